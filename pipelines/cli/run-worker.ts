// `pipelines run <file>` on Kafka: starts the worker, stops it cleanly on SIGTERM/SIGINT (a second signal
// exits at once), or by itself with --until-caught-up once it has processed everything the topic held at start.
import { withTimeout } from '../deadline.ts';
import { connectionsFrom } from '../kafka/connection.ts';
import { caughtUp, drainedTo, endOffsets } from '../kafka/offsets.ts';
import { observeAddressFromEnv } from '../observe/http.ts';
import { createLogger } from '../observe/log.ts';
import { readStatus, statusLine } from '../observe/status.ts';
import { launchWorker, type RunningWorker } from '../runtime/launch.ts';
import { mask } from '../secrets.ts';
import { parseOptions, usage } from './args.ts';

export const HELP = `run <topology.yaml> [--brokers host:port] [--registry url] [--group id] [--until-caught-up]
       [--metrics host:port | --no-metrics]
  or: run <topology.yaml> --dry-run --input <events.jsonl> [--tables <rows.jsonl>] [--batch N]
  --dry-run: no service needed. --input has one event per line (JSON, as the source's Avro schemas read it), or
    {"value": <event>, "partition": p, "key": k}; blank lines and lines starting with # or // are skipped.
    --tables has one {"table": "<name>", "row": {...}} per line, loaded before the first event.
    Prints "<sink id>\t<row>" per output and "dead-letter\t{...}" per dead letter; a line that is not JSON or not
    an event of the source is a dead letter of its own line, and the run goes on (exit 0; a summary on stderr).
    A record an enrich step still holds at the end (waiting for a table row) prints "held\t{step, key, line}",
    then its wait ends and afterWait applies.
    --batch N: events per batch (default 1000), as the worker's batches (perBatch emits follow them).`;

export async function runWorker(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, {
    brokers: { type: 'string' },
    registry: { type: 'string' },
    group: { type: 'string' },
    metrics: { type: 'string' },
    'no-metrics': { type: 'boolean' },
    'until-caught-up': { type: 'boolean' },
  });
  const [file] = positionals;
  if (!file) throw usage(HELP);
  const log = createLogger('pipelines');
  const flags = { brokers: values.brokers, registry: values.registry, group: values.group };
  const metricsAt = values.metrics;
  // The later of --metrics and --no-metrics wins (a wrapper's default can be overridden).
  const observe =
    args.lastIndexOf('--no-metrics') > args.lastIndexOf('--metrics')
      ? (false as const)
      : metricsAt
        ? observeAddressFromEnv({ PIPELINES_METRICS_ADDRESS: metricsAt }, '--metrics')
        : observeAddressFromEnv(process.env);
  // Signals are handled from the start: one during start-up stops the worker as soon as it is up.
  let running: RunningWorker | undefined;
  let requested: string | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (why: string) => {
    requested ??= why;
    if (!running) return Promise.resolve();
    if (stopping) return stopping;
    log.info({ why }, 'stopping: finishing the batch in hand, flushing sinks, committing, leaving the group');
    stopping = running.stop();
    return stopping;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping || (requested && !running)) {
      log.warn({ signal }, 'second signal: exiting now (uncommitted records will be processed again)');
      process.exit(130);
    }
    void stop(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  running = await launchWorker({ file, flags, log, observe });
  if (requested) void stop(requested);

  const timers: NodeJS.Timeout[] = [];
  if (values['until-caught-up']) {
    const conn = connectionsFrom(process.env, flags).kafka;
    const stages = running.stages.map((stage) => ({
      stage,
      ends: undefined as Map<number, bigint> | undefined,
      previous: undefined as Map<number, bigint> | undefined,
    }));
    let checking = false;
    /** The check under way: one that hung and was given up on must not stop the worker when it comes back. */
    let generation = 0;
    let said = Date.now();
    /** Whether a stage has committed to `ends`, or is short of it by transaction markers only. */
    const stageDone = async (s: (typeof stages)[number], ends: Map<number, bigint>): Promise<boolean> => {
      const { topic, worker } = s.stage;
      // Through the worker's own consumer: an admin client's offset fetch crashes librdkafka 2.15 (SIGSEGV,
      // a null group handle on NOT_COORDINATOR) while the group coordinator moves, e.g. a broker restart.
      // Bounded: a fetch that never answers (seen once, in a rebalance) must not end the checking for good.
      const at = await withTimeout(
        // The client's own timeout too: an abandoned fetch would keep a libuv pool thread until the broker answers.
        worker.consumer.committed(
          [...ends.keys()].map((partition) => ({ topic, partition })),
          5_000,
        ),
        10_000,
        'the committed offsets did not come within 10 s',
      );
      const committed = new Map(at.map((c) => [c.partition, BigInt(c.offset ?? -1)]));
      const still = committed.size === s.previous?.size && [...committed].every(([p, o]) => s.previous?.get(p) === o);
      s.previous = committed;
      if (caughtUp(committed, ends)) return true;
      // Said now and then: a worker that never gets there shows in its log whether it still moves.
      if (Date.now() - said > PROGRESS_EVERY_MS) {
        said = Date.now();
        let left = 0n;
        for (const [p, end] of ends) {
          const c = committed.get(p) ?? 0n;
          left += end - (c < 0n ? 0n : c);
        }
        log.info({ topic, left: Number(left), unchanged: still }, 'not caught up yet');
      }
      // Short of the end and not moving: what is left may be transaction markers only (a topic written exactly
      // once), which no commit covers, unless a transaction is still open.
      return still && drainedTo(conn, topic, committed, ends);
    };
    timers.push(
      setInterval(() => {
        if (checking || stopping) return;
        checking = true;
        const mine = ++generation;
        let step = '';
        // Bounded as a whole: a client call that never answers (a broker restarting) must not end the checking.
        withTimeout(
          (async () => {
            // Each source as it was when the worker came up (read again after a failure: broker away); each internal
            // topic as it is once the stage before it is done, so it holds all that stage wrote.
            for (const s of stages) {
              step = `the end offsets of ${s.stage.topic}`;
              const internal = s.stage.plan.checked.entry !== undefined;
              if (!internal) s.ends ??= await endOffsets(conn, s.stage.topic);
              const ends = internal ? await endOffsets(conn, s.stage.topic) : s.ends!;
              step = `the group's progress on ${s.stage.topic}`;
              if (!(await stageDone(s, ends))) return;
            }
            if (mine === generation) void stop('caught up');
          })(),
          CHECK_BOUND_MS,
          () => `no answer in ${CHECK_BOUND_MS / 1000} s while reading ${step}`,
        )
          .catch((err) => log.warn({ err: (err as Error).message }, 'catch-up check failed, trying again'))
          .finally(() => {
            checking = false;
          });
      }, 500),
    );
  }
  if (process.stdout.isTTY && running.server) {
    const url = running.server.url;
    timers.push(
      setInterval(() => {
        readStatus({ url })
          .then((s) => process.stdout.write(`\r\x1b[2K${statusLine(s)}`))
          .catch(() => {});
      }, 2000),
    );
  }
  try {
    await running.finished;
    await stopping;
    return 0;
  } catch (err) {
    // The worker stopped on an error it could not get past: the log has the details, the terminal one line.
    const e = err as Error;
    log.error({ err: e.message, stack: e.stack }, 'worker stopped on an error');
    process.stderr.write(mask(`pipelines run: error: the worker stopped: ${e.message}\n`));
    // The worker is down; its tables, producer and metrics server are released too, or they keep the process up.
    await (stopping ?? running.stop()).catch(() => {});
    return 1;
  } finally {
    for (const t of timers) clearInterval(t);
    if (process.stdout.isTTY) process.stdout.write('\n');
    log.flush();
  }
}

/** How long one catch-up check may take before it is given up on and the next one starts. */
const CHECK_BOUND_MS = 60_000;
/** How often --until-caught-up says how much is left while it waits. */
const PROGRESS_EVERY_MS = 30_000;
