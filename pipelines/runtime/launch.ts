// Assembles a running worker from a topology file: the compiled plan, the Avro codec on the registry, the
// sinks (output schemas registered or checked first, tables created or migrated), lookup tables loaded from
// their compacted topics, metrics and health endpoints. Everything that can be refused is refused before
// the consumer joins the group.
import { hostname } from 'node:os';
import { AvroCodec, jsonDecoder, RegistryClient, taggedJsonDecoder } from '../codec/index.ts';
import { settledWithin } from '../deadline.ts';
import { PipelinesError } from '../errors.ts';
import {
  type ConnectionFlags,
  type Connections,
  clientConfig,
  connectionsFrom,
  describeConnection,
  kafkaOf,
} from '../kafka/connection.ts';
import { partitionsWithRecords, topicPositions } from '../kafka/offsets.ts';
import { type ObserveServer, type ReadinessCheck, startObserveServer } from '../observe/http.ts';
import type { WorkerLog } from '../observe/log.ts';
import { createMetrics, type Metrics, type TopologyMetrics } from '../observe/metrics.ts';
import { watchWatermarks } from '../observe/watermarks.ts';
import type { RetryPolicy } from '../retry.ts';
import { settingError, shown, wholeSetting } from '../settings.ts';
import { KafkaSink } from '../sinks/kafka/sink.ts';
import { TableLoader } from '../state/tables.ts';
import { loadStages } from './load.ts';
import { bufferBounds, fetchConfig, memoryBudget } from './memory.ts';
import { buildOutputs, type Cleanup, type Launch, type Outputs, type Rebuild, transactionsOn } from './outputs.ts';
import type { Plan } from './plan.ts';
import { kafkaSource } from './source.ts';
import { Worker, type WorkerOptions } from './worker.ts';

export interface LaunchOptions {
  file: string;
  env?: NodeJS.ProcessEnv;
  flags?: ConnectionFlags & { group?: string };
  log: WorkerLog;
  metrics?: Metrics;
  /** Where /metrics, /healthz and /readyz listen; false for none. */
  observe?: { host: string; port: number } | false;
  /** Overrides of the worker's tuning (tests and benchmarks); `consumer` adds librdkafka consumer properties. */
  tuning?: {
    flushIntervalMs?: number;
    maxBatchSize?: number;
    shutdownTimeoutMs?: number;
    clickhouseMaxRows?: number;
    consumer?: Record<string, string | number>;
  };
  /**
   * Resources several workers of one process share, by the key their sinks ask for (sinks/spec.ts `shared`): the
   * lender opens and closes them. Tests run several workers over one ClickHouse engine this way, as over a server.
   */
  lent?: ReadonlyMap<string, unknown>;
  /** Allows destructive ClickHouse table changes. */
  allowDestructive?: boolean;
  /** Called on every batch besides the metrics (progress displays, benchmarks). */
  onBatch?: (e: { partition: number; records: number; lastOffset: string }) => void;
  /** Rebuild mode (`pipelines replay`): see Rebuild. */
  rebuild?: Rebuild;
}

export interface RunningWorker {
  /** The plan of the first stage (the one reading the source topic). */
  plan: Plan;
  /** The first stage's worker. */
  worker: Worker;
  /** Every stage, in order: one unless the topology has repartition steps (compile/stages.ts). */
  stages: RunningStage[];
  /** Settles when every stage stopped; rejects with the first stage's failure (the others are stopped then). */
  finished: Promise<void>;
  server: ObserveServer | undefined;
  stop(): Promise<void>;
}

export interface RunningStage {
  id: string;
  plan: Plan;
  worker: Worker;
  /** The topic the stage reads, and its group. */
  topic: string;
  group: string;
}

/** How long start-up may wait for the services it needs (the registry first) before the worker gives up. */
export const DEFAULT_STARTUP_TIMEOUT_MS = 300_000;
/** How long each thing the worker closes when it stops (producer, tables, servers) may take before it goes on. */
const CLEANUP_BOUND_MS = 30_000;

export async function launchWorker(o: LaunchOptions): Promise<RunningWorker> {
  const env = o.env ?? process.env;
  const loaded = await loadStages(o.file, { env }, o.flags?.group);
  const plan = loaded[0]!.plan;
  if (o.rebuild && loaded.length > 1)
    throw new PipelinesError(
      'CONFIG',
      `${plan.name}: a topology with repartition steps cannot be rebuilt by replay yet; rebuild it with a new ` +
        'group (--group) and new tables',
    );
  const spec = plan.topology.spec;
  const retry = retryPolicy(spec.errors.retry);
  const startup = startupOf(plan.name, env);
  let stopping = false;
  const conns = connectionsFrom(env, o.flags);
  // Every value a sink will read from the environment, checked now: before any service is contacted.
  for (const { plan: p } of loaded) for (const s of p.sinks) s.spec.checkSettings?.(env);
  staticMembership(env);
  const budget = memoryBudget(env);
  const tables = loaded.reduce((n, l) => n + Object.keys(l.plan.topology.spec.tables).length, 0);
  const bounds = bufferBounds(budget, loaded.length + tables, loaded.length);
  o.log.info({ topology: plan.name, file: o.file, connection: describeConnection(conns) }, 'starting worker');
  o.log.info(
    { budget: budget ? `${Math.round(budget.bytes / 2 ** 20)} MiB (${budget.from})` : 'none', ...bounds },
    'memory budget',
  );
  const kafka = kafkaOf(conns.kafka, o.log);
  // Without the observe server (--no-metrics) there are no metrics at all: no registry, no event callbacks.
  const metrics = o.metrics ?? (o.observe === false ? undefined : createMetrics());
  const events = metrics?.topology(plan.name);
  events?.observeSteps(() => loaded.flatMap((l) => l.plan.observed()));
  const gaveUp = () => stopping || startup.overdue();
  const registry = registryClient(conns, retry, events, o.log, startup, gaveUp);
  const cleanups: Cleanup[] = [];
  // Each bounded: a client that never answers its close (a broker away) must not keep a stopped worker up.
  const closeAll = async () => {
    for (const c of cleanups.reverse()) {
      if ((await settledWithin(c.close(), CLEANUP_BOUND_MS)) === 'late')
        o.log.warn({ what: c.what, ms: CLEANUP_BOUND_MS }, 'not closed in time: going on');
    }
  };
  const shared = new Map<string, unknown>();
  const launchOf = (stage: Plan): Launch => ({
    log: o.log,
    rebuild: o.rebuild,
    allowDestructive: o.allowDestructive ?? false,
    tuning: o.tuning ?? {},
    env,
    plan: stage,
    group: stage === plan ? (o.flags?.group ?? spec.source.group) : stage.topology.spec.source.group,
    retry,
    gaveUp,
    conns,
    kafka,
    registry,
    // The plan's own reader types: records decoded through them are what its expressions read fastest.
    codec: new AvroCodec({ registry, readers: stage.readerTypes.values() }),
    events,
    cleanups,
    shared,
    bounds,
    ...(o.lent ? { lent: o.lent } : {}),
  });
  try {
    // Up first: while start-up waits (for the registry, the tables), /healthz answers and /readyz says what for.
    const stages: RunningStage[] = [];
    const checks: ReadinessCheck[] = [startup.check];
    const server =
      o.observe === false
        ? undefined
        : await startObserveServer({
            metrics: metrics!,
            ...(o.observe ?? { host: '127.0.0.1', port: 19100 }),
            checks,
            liveness: () => stages.flatMap((s) => s.worker.health()),
          });
    if (server) {
      cleanups.push({ what: 'the metrics server', close: () => server.close() });
      o.log.info({ url: server.url }, 'metrics and health endpoints');
    }
    const launches = loaded.map((l) => ({ id: l.id, w: launchOf(l.plan) }));
    startup.phase('preparing sinks and loading lookup tables');
    // Independent of each other, so at once: the sinks (registry, DDL, the embedded engine) and the tables (their
    // topics read to the end). Both settle before any cleanup runs: a failure of one leaves the other to finish.
    const outputs: Outputs[] = [];
    const prepared = await Promise.allSettled([
      (async () => {
        for (const { w } of launches) outputs.push(await buildOutputs(w));
      })(),
      Promise.all(launches.map(({ w }) => loadTables(w))),
    ]);
    for (const p of prepared) if (p.status === 'rejected') throw p.reason;
    for (const out of outputs) checks.push(...out.readiness);
    for (const [i, { id, w }] of launches.entries()) {
      const worker = new Worker(workerOptions(w, o, outputs[i]!));
      const { topic, group } = sourceOf(w);
      stages.push({ id, plan: w.plan, worker, topic, group });
    }
    const stageSinks = outputs.flatMap((out) => [
      ...out.sinks,
      ...(out.deadLetters ? [out.deadLetters] : []),
      ...(out.changelog ? [out.changelog.sink] : []),
    ]);
    events?.memory({
      budgetBytes: budget?.bytes ?? 0,
      ...bounds,
      buffered: () => stageSinks.map((s) => ({ sink: s.id, rows: s.buffered })),
    });
    startup.phase('joining the consumer group');
    // The last stage first: what the first writes to an internal topic is read as soon as it is there.
    for (const stage of [...stages].reverse()) await stage.worker.start();
    startup.done();
    if (events) {
      for (const { w } of launches) {
        // The source's end and the group's position, polled: the lag moves while nothing is consumed.
        const { topic, group, start } = sourceOf(w);
        const positions = topicPositions(conns.kafka, topic, group);
        const watch = watchWatermarks({ positions, topic, start, events, log: o.log });
        cleanups.push({ what: `the lag poll of ${topic}`, close: () => watch.stop() });
      }
    }
    const stopStages = () => Promise.all(stages.map((s) => s.worker.stop())).then(() => {});
    // One stage failing stops the others: the process is one worker, healthy or not.
    const finished = Promise.all(
      stages.map((s) =>
        s.worker.finished.catch((err: Error) => {
          void stopStages();
          throw err;
        }),
      ),
    ).then(() => {});
    finished.catch(() => {});
    return {
      plan,
      worker: stages[0]!.worker,
      stages,
      finished,
      server,
      async stop() {
        stopping = true;
        await stopStages();
        await closeAll();
      },
    };
  } catch (err) {
    await closeAll();
    throw startup.overdue() ? startup.timeout(err) : err;
  }
}

/** Start-up's phase (for /readyz and the logs) and its deadline (PIPELINES_STARTUP_TIMEOUT_MS). */
interface Startup {
  phase(what: string): void;
  /** A retried service: said in /readyz until start-up moves on. */
  waiting(what: string): void;
  done(): void;
  overdue(): boolean;
  timeout(cause: unknown): PipelinesError;
  check: ReadinessCheck;
}

function startupOf(topology: string, env: NodeJS.ProcessEnv): Startup {
  const limitMs = wholeSetting(
    env,
    'PIPELINES_STARTUP_TIMEOUT_MS',
    DEFAULT_STARTUP_TIMEOUT_MS,
    `milliseconds, e.g. ${DEFAULT_STARTUP_TIMEOUT_MS}`,
  );
  const deadline = Date.now() + limitMs;
  let phase: string | undefined = 'starting';
  let waiting: string | undefined;
  return {
    phase(what) {
      phase = what;
      waiting = undefined;
    },
    waiting(what) {
      if (phase !== undefined) waiting = what;
    },
    done() {
      phase = undefined;
      waiting = undefined;
    },
    overdue: () => phase !== undefined && Date.now() > deadline,
    timeout(cause) {
      const why = (cause as Error)?.message ?? String(cause);
      return new PipelinesError(
        'STARTUP_TIMEOUT',
        `gave up starting after ${Math.round(limitMs / 1000)} s ${waiting ?? phase}: ${why} ` +
          '(the deadline is PIPELINES_STARTUP_TIMEOUT_MS)',
        { cause },
      );
    },
    check: () => (phase === undefined ? [] : [`${topology}: starting: ${waiting ?? phase}`]),
  };
}

function workerOptions(w: Launch, o: LaunchOptions, out: Outputs): WorkerOptions {
  const { plan } = w;
  const spec = plan.topology.spec;
  const tuning = o.tuning ?? {};
  const producer = out.producer;
  return {
    topology: plan.name,
    client: kafkaSource(clientConfig(w.conns.kafka), o.log),
    source: sourceOf(w),
    decoder: plan.checked.entry ? taggedJsonDecoder : spec.source.value.format === 'json' ? jsonDecoder : w.codec,
    processor: plan,
    sinks: out.sinks,
    ...(out.deadLetters ? { deadLetters: out.deadLetters } : {}),
    ...(out.changelog ? { changelog: out.changelog } : {}),
    ...(out.transactional && producer
      ? {
          transactional: {
            producer: transactionsOn(producer.current),
            sinks: out.sinks.filter((s) => s instanceof KafkaSink),
            renew: async () => transactionsOn(await producer.renew()),
          },
        }
      : {}),
    retry: w.retry,
    recordsLeft: (topic, from, until) => partitionsWithRecords(w.conns.kafka, topic, from, until),
    ...(tuning.flushIntervalMs ? { flushIntervalMs: tuning.flushIntervalMs } : {}),
    ...(tuning.maxBatchSize ? { maxBatchSize: tuning.maxBatchSize } : {}),
    fetchBounds: w.bounds,
    maxBufferedRows: w.bounds.maxBufferedRows,
    ...(tuning.shutdownTimeoutMs ? { shutdownTimeoutMs: tuning.shutdownTimeoutMs } : {}),
    consumerConfig: { ...staticMembership(w.env), ...tuning.consumer },
    log: o.log,
    events: withBatchListener(w.events, o.onBatch),
  };
}

/**
 * PIPELINES_GROUP_INSTANCE_ID makes the worker a static member of its group (librdkafka's `group.instance.id`): a
 * restarted worker with the same id (a container restarted in its pod) takes its partitions back at once instead
 * of waiting for its old session to time out; one that goes away for good holds them until that timeout.
 */
export function staticMembership(env: NodeJS.ProcessEnv): Record<string, string> {
  const id = env.PIPELINES_GROUP_INSTANCE_ID?.trim();
  if (!id) return {};
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(id))
    throw settingError(
      'PIPELINES_GROUP_INSTANCE_ID',
      `${shown(id)} is not a valid group instance id`,
      'at most 249 letters, digits, dots, dashes and underscores (a pod name, e.g. order-analytics-0)',
    );
  return { 'group.instance.id': id };
}

/** Its requests are retried there, under the topology's policy, and nowhere above (decoding, schema checks). */
function registryClient(
  conns: Connections,
  retry: RetryPolicy,
  events: TopologyMetrics | undefined,
  log: WorkerLog,
  startup: Startup,
  stopping: () => boolean,
): RegistryClient {
  const url = conns.registry.url;
  return new RegistryClient({
    ...conns.registry,
    retry: {
      ...retry,
      stopped: stopping,
      onRetry: (error, attempt, delayMs) => {
        events?.retry?.({ what: 'registry', attempt, error });
        startup.waiting(`waiting for the schema registry at ${url} (attempt ${attempt}: ${error.message})`);
        log.warn(
          { what: 'registry', url, attempt, retryInMs: delayMs, err: error.message },
          'schema registry failed, retrying',
        );
      },
    },
  });
}

function sourceOf(w: Launch) {
  const { topic, start } = w.plan.topology.spec.source;
  return { topic, group: w.group, start };
}

/** The topology's `errors.retry` as the one retry policy. */
function retryPolicy(r: Plan['topology']['spec']['errors']['retry']): RetryPolicy {
  return { initialMs: r.backoff.min, maxMs: r.backoff.max, ...(r.max !== undefined ? { maxAttempts: r.max } : {}) };
}

function withBatchListener(events: TopologyMetrics | undefined, onBatch: LaunchOptions['onBatch']) {
  if (!onBatch) return events;
  return {
    ...events,
    batch(e: Parameters<NonNullable<LaunchOptions['onBatch']>>[0] & Parameters<TopologyMetrics['batch']>[0]) {
      events?.batch(e);
      onBatch(e);
    },
  };
}

/** Lookup tables: loaded before the consumer joins, so the first batch already sees them. */
async function loadTables(w: Launch): Promise<void> {
  const { plan } = w;
  const loaders: TableLoader[] = [];
  for (const [name, table] of Object.entries(plan.topology.spec.tables)) {
    const type = plan.tableTypes.get(name);
    const loader = new TableLoader({
      kafka: w.kafka,
      connection: clientConfig(w.conns.kafka),
      table: name,
      topic: table.topic,
      store: plan.tables,
      decoder: type ? new AvroCodec({ registry: w.registry, readers: [type], unknownRecord: 'writer' }) : jsonDecoder,
      group: `pipelines-${plan.name}-table-${name}-${hostname()}-${process.pid}-${Date.now()}`,
      consumerConfig: fetchConfig(w.bounds),
      gaveUp: w.gaveUp,
      log: w.log,
      progress: (e) => w.events?.table?.(e),
    });
    loaders.push(loader);
    w.cleanups.push({ what: `the table ${name}`, close: () => loader.stop() });
  }
  await Promise.all(loaders.map((l) => l.start()));
  await Promise.all(loaders.map((l) => l.caughtUp));
}
