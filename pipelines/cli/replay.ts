// `pipelines replay <file> --into <suffix> [--swap]`: rebuilds a topology's ClickHouse projections from the
// earliest offsets into new tables (<table>_<suffix>), with its own consumer group, showing progress (a bar on a
// terminal, log lines otherwise); --swap then exchanges each live table with its rebuild and hands the rebuild's
// position to the live sink, so that the live worker carries on from there without a gap or a double count.
import { connectionsFrom } from '../kafka/connection.ts';
import { committedOffsets, groupMembers, topicOffsets, withAdmin } from '../kafka/offsets.ts';
import { createLogger } from '../observe/log.ts';
import { launchWorker } from '../runtime/launch.ts';
import { loadPlan } from '../runtime/load.ts';
import { clickHouseConfigFromEnv, withClickHouse } from '../sinks/clickhouse/connection.ts';
import { topologyTables } from '../sinks/clickhouse/schema.ts';
import { rebuildLogSink, type SwapTable, swappedIn, swapTables } from '../sinks/clickhouse/swap.ts';
import type { Ack, SourceRange } from '../sinks/sink.ts';
import { type Command, parseOptions, usageError, userError } from './args.ts';

const usage = `usage: pipelines replay <topology.yaml> --into <suffix> [--swap] [--group <live group>]
  rebuilds every ClickHouse table of the topology as <table>_<suffix> from the earliest offsets;
  --swap (live worker stopped) exchanges each table with its rebuild once it has caught up`;

/** Dead letters during a rebuild: the live run already sent them; counted, acknowledged, not sent again. */
class CountedDeadLetters {
  readonly id = 'dead-letters';
  readonly buffered = 0;
  count = 0;
  onAck: (ack: Ack) => void = () => {};
  append(rows: readonly unknown[], range: SourceRange): void {
    this.count += rows.length;
    this.onAck({ topic: range.topic, partition: range.partition, next: (BigInt(range.last) + 1n).toString() });
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

/** Offsets done of end offsets, rate and ETA, from the batches the worker reports. */
export class ReplayProgress {
  readonly #low = new Map<number, bigint>();
  readonly #end = new Map<number, bigint>();
  readonly #at = new Map<number, bigint>();
  readonly #started: number;
  readonly #now: () => number;
  constructor(ends: ReadonlyArray<{ partition: number; low: bigint; high: bigint }>, now = Date.now) {
    for (const e of ends) {
      this.#low.set(e.partition, e.low);
      this.#end.set(e.partition, e.high);
      this.#at.set(e.partition, e.low);
    }
    this.#now = now;
    this.#started = now();
  }
  batch(partition: number, lastOffset: string): void {
    const end = this.#end.get(partition);
    if (end === undefined) return;
    const at = BigInt(lastOffset) + 1n;
    this.#at.set(partition, at > end ? end : at);
  }
  get total(): number {
    let n = 0n;
    for (const [p, end] of this.#end) n += end - this.#low.get(p)!;
    return Number(n);
  }
  get done(): number {
    let n = 0n;
    for (const [p, at] of this.#at) n += at - this.#low.get(p)!;
    return Number(n);
  }
  /** One line: a bar when `width` is given, then done/total, rate and ETA. */
  line(width?: number): string {
    const { done, total } = this;
    const secs = Math.max((this.#now() - this.#started) / 1000, 0.001);
    const rate = done / secs;
    const left = total - done;
    const eta = rate > 0 ? `${Math.ceil(left / rate)}s` : '?';
    const frac = total === 0 ? 1 : done / total;
    const bar = width ? `[${'#'.repeat(Math.round(frac * width)).padEnd(width, '.')}] ` : '';
    return `${bar}${(frac * 100).toFixed(1)}% ${done}/${total} offsets, ${Math.round(rate)}/s, ETA ${eta}`;
  }
}

export const replay: Command = {
  summary: 'rebuild the ClickHouse projections of a topology from the earliest offsets (--into, --swap)',
  help: usage,
  async run(args) {
    const { values, positionals } = parseOptions(args, {
      into: { type: 'string' },
      swap: { type: 'boolean', default: false },
      group: { type: 'string' },
      brokers: { type: 'string' },
      registry: { type: 'string' },
    });
    const [file] = positionals;
    const suffix = values.into;
    if (!file || !suffix) {
      process.stderr.write(`${usage}\n`);
      return 2;
    }
    if (!/^\w+$/.test(suffix)) throw usageError(`--into '${suffix}': letters, digits and _ only (a table suffix)`);
    const plan = await loadPlan(file, { env: process.env });
    const spec = plan.topology.spec;
    const tables = topologyTables(plan, (t) => `${t}_${suffix}`);
    if (tables.length === 0) throw userError(`${file}: no ClickHouse sink to rebuild`);
    const conn = connectionsFrom(process.env, { brokers: values.brokers, registry: values.registry }).kafka;
    const liveGroup = values.group ?? spec.source.group;
    const group = `${liveGroup}-rebuild-${suffix}`;
    const log = createLogger('pipelines');
    const out = process.stderr;
    if (values.swap && (await groupMembers(conn, liveGroup)) > 0) {
      throw userError(`--swap: the live group '${liveGroup}' has members; stop its workers first, then replay`);
    }
    const swapping: SwapTable[] = tables.map((t) => ({
      sinkId: t.sinkId,
      live: t.logical,
      rebuilt: t.spec.table,
      ...(t.spec.database ? { database: t.spec.database } : {}),
    }));
    const clickhouse = clickHouseConfigFromEnv(process.env);
    const swap = () =>
      withClickHouse(clickhouse, async (ch) => {
        for (const line of await swapTables(ch, plan.name, swapping, suffix)) out.write(`${line}\n`);
      });
    // A rebuild already swapped in (all or some tables): writing on would go into the old tables, now <t>_<suffix>.
    const swapped = await withClickHouse(clickhouse, async (ch) => {
      for (const t of swapping) if ((await swappedIn(ch, t.live, t.database)) === suffix) return t.live;
      return undefined;
    });
    if (swapped !== undefined) {
      if (!values.swap) {
        throw userError(
          `${swapped} already holds the rebuild --into ${suffix}: add --swap to finish a swap that stopped, or rebuild --into a new suffix`,
        );
      }
      out.write(`the rebuild --into ${suffix} was swapped in already (${swapped}): finishing the swap\n`);
      await swap();
      return 0;
    }
    const ends = await withAdmin(conn, (a) => topicOffsets(a, spec.source.topic));
    const progress = new ReplayProgress(
      ends.map((e) => ({ partition: e.partition, low: BigInt(e.low), high: BigInt(e.high) })),
    );
    out.write(
      `rebuilding ${tables.map((t) => t.spec.table).join(', ')} from ${spec.source.topic} (group ${group}): ` +
        `${progress.total} offsets\n`,
    );
    const deadLetters = new CountedDeadLetters();
    const running = await launchWorker({
      file,
      flags: { ...(values.brokers ? { brokers: values.brokers } : {}), group },
      log,
      observe: false,
      rebuild: {
        table: (t) => `${t}_${suffix}`,
        logSink: (id) => rebuildLogSink(id, suffix),
        deadLetters: deadLetters as never,
      },
      onBatch: (e) => progress.batch(e.partition, e.lastOffset),
    });
    const tty = out.isTTY === true;
    const show = setInterval(
      () => {
        if (tty) out.write(`\r\x1b[2K${progress.line(30)}`);
        else log.info({ done: progress.done, total: progress.total, progress: progress.line() }, 'replay progress');
      },
      tty ? 250 : 5000,
    );
    let stopping = false;
    const onSignal = () => {
      if (stopping) process.exit(130);
      stopping = true;
      void running.stop();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      // Done when the rebuild group has committed up to the end offsets seen at start.
      const target = new Map(ends.map((e) => [e.partition, BigInt(e.high)]));
      await Promise.race([
        running.finished,
        (async () => {
          for (;;) {
            await new Promise((r) => setTimeout(r, 500));
            if (stopping) return;
            const at = await committedOffsets(conn, group, spec.source.topic).catch(() => new Map<number, bigint>());
            if ([...target].every(([p, end]) => end === 0n || (at.get(p) ?? -1n) >= end)) return;
          }
        })(),
      ]);
      const interrupted = stopping;
      stopping = true;
      await running.stop();
      if (interrupted) {
        out.write(`\ninterrupted: run the same command again to resume the rebuild\n`);
        return 130;
      }
      out.write(tty ? `\r\x1b[2K${progress.line(30)}\n` : `${progress.line()}\n`);
      out.write(
        `rebuilt ${tables.length} table(s)${deadLetters.count ? `; ${deadLetters.count} record(s) would be dead letters (not sent again)` : ''}\n`,
      );
      if (!values.swap) return 0;
      if ((await groupMembers(conn, liveGroup)) > 0) {
        throw userError(`--swap: the live group '${liveGroup}' has members again; not swapping`);
      }
      await swap();
      return 0;
    } finally {
      clearInterval(show);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      log.flush();
    }
  },
};
