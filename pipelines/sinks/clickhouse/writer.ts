// The batching writer: buffers rows per source partition, flushes on a row count or on time,
// one insert per table and partition per flush, each with a token derived from the source range,
// after recording the range in `_pipelines_offsets` (see offsets.ts for the protocol).

import type { ClickHouseSettings } from '@clickhouse/client';
import { defaultRetry } from '../../retry.ts';
import type { ClickHouse } from './connection.ts';
import { qualifiedName } from './ddl.ts';
import { ClickHouseSinkError, classifyError } from './errors.ts';
import {
  assertStillOwner,
  type Claim,
  type CommittedRange,
  dedupToken,
  recordRanges,
  type SourceRange,
} from './offsets.ts';
import { newRetryStats, type RetryOptions, type RetryStats, withRetry } from './retry.ts';

export type InsertFormat = 'JSONEachRow' | 'JSONCompactEachRow';
/** A row: an object keyed by column, or (JSONCompactEachRow only) an array in column order. */
export type Row = Readonly<Record<string, unknown>> | readonly unknown[];

/** JSONCompactEachRow measured faster on chdb (test/bench/clickhouse-insert.bench.ts); old servers lack it. */
export const DEFAULT_FORMAT: InsertFormat = 'JSONCompactEachRow';

export interface InsertOptions {
  /** The table's columns in the order the rows use; also how unknown columns get named in errors. */
  columns: readonly string[];
  format?: InsertFormat;
  /** `insert_deduplication_token`: a repeated token on a table with a dedup window is dropped. */
  token?: string;
  database?: string;
}

/**
 * Settings of every insert. On chdb a `SET` made for one query stays on the session (the
 * connection turns settings into SET statements), so each insert states them all: a token
 * left over from the previous insert would silently drop this one. chdb also defaults to
 * async_insert = 1, which would bypass token deduplication.
 */
export function insertSettings(kind: ClickHouse['kind'], token: string | undefined): ClickHouseSettings {
  const s: ClickHouseSettings = { input_format_skip_unknown_fields: 0 };
  if (kind === 'embedded') {
    s.async_insert = 0;
    s.insert_deduplicate = 1;
    s.insert_deduplication_token = token ?? '';
  } else if (token !== undefined) {
    s.insert_deduplication_token = token;
  }
  return s;
}

function toCompact(rows: readonly Row[], columns: readonly string[]): unknown[][] {
  const out = new Array<unknown[]>(rows.length);
  const n = columns.length;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (Array.isArray(r)) {
      out[i] = r as unknown[];
      continue;
    }
    const obj = r as Readonly<Record<string, unknown>>;
    const a = new Array<unknown>(n);
    for (let j = 0; j < n; j++) a[j] = obj[columns[j]!];
    out[i] = a;
  }
  return out;
}

/** One insert, no retry; failures are ClickHouseSinkError naming the table (and column if known). */
export async function insertRows(
  ch: ClickHouse,
  table: string,
  rows: readonly Row[],
  opts: InsertOptions,
): Promise<void> {
  if (rows.length === 0) return;
  const format = opts.format ?? DEFAULT_FORMAT;
  try {
    await ch.client.insert({
      table: opts.database ? qualifiedName(table, opts.database) : table,
      values: format === 'JSONCompactEachRow' ? toCompact(rows, opts.columns) : (rows as Row[]),
      format,
      columns: opts.columns as [string, ...string[]],
      clickhouse_settings: insertSettings(ch.kind, opts.token),
    });
  } catch (err) {
    throw classifyError(err, { table, operation: 'insert' });
  }
}

export interface SinkTable {
  table: string;
  columns: readonly string[];
  database?: string;
  /**
   * The name insert tokens use (default `table`). A rebuild writes `t_<suffix>` under the tokens of `t`, so
   * that once the tables are swapped the live sink's replay of a recorded range is recognised.
   */
  tokenName?: string;
}

export interface SinkWriterOptions {
  topology: string;
  sink: string;
  /** The key of this writer's rows in `_pipelines_offsets` (default `sink`; a rebuild keeps its own). */
  logSink?: string;
  tables: readonly SinkTable[];
  format?: InsertFormat;
  /** Flush when this many rows are buffered (all tables and partitions). Default 50,000. */
  maxRows?: number;
  /** Flush this long after the first buffered row. Default 1,000 ms. */
  maxDelayMs?: number;
  /** `write` waits (backpressure) while buffered plus in-flight rows exceed this. Default 4 × maxRows. */
  maxBufferedRows?: number;
  /** Record each batch range in `_pipelines_offsets` before its data (exactly-once). Default true. */
  recordOffsets?: boolean;
  /** Use insert tokens (needs a server that knows them, and a dedup window on the tables). Default true. */
  tokens?: boolean;
  /** Retry policy of each insert; default: retry until the writer is closed. */
  retry?: Omit<RetryOptions, 'signal' | 'stats'>;
  /** Who writes (several workers may share one server): the owner of its partition claims (offsets.ts). */
  owner?: string;
  /** Called when a partition's rows up to `next - 1` are in ClickHouse: commit `next` to Kafka. */
  onAck?: (ack: { topic: string; partition: number; next: string }) => void;
}

export interface SinkWriterStats {
  /** Rows waiting in the buffer, and rows of the flush in flight. */
  bufferedRows: number;
  inflightRows: number;
  /** Writes currently held back because the buffer is full. */
  waitingWrites: number;
  flushes: number;
  inserts: number;
  rowsWritten: number;
  lastFlushMs: number;
  /** Retries, failures and errors by code of the inserts. */
  retry: RetryStats;
}

interface PartitionBuffer {
  topic: string;
  partition: number;
  first: bigint;
  last: bigint;
  /** Set on the buffer that replays a recorded range: its token uses the recorded first offset. */
  replayFirst?: bigint;
  rows: Map<string, Row[]>;
  count: number;
}

/** A recorded range to replay with the same boundaries; sealed once the rows held for it are complete. */
interface HeldReplay {
  first: bigint;
  last: bigint;
  sealed?: boolean;
}

const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/** A batching, exactly-once writer for one sink of one topology. */
export class SinkWriter {
  readonly stats: SinkWriterStats;
  readonly #ch: ClickHouse;
  readonly #o: Required<Omit<SinkWriterOptions, 'onAck' | 'retry' | 'logSink' | 'owner'>> &
    Pick<SinkWriterOptions, 'onAck' | 'retry' | 'logSink' | 'owner'>;
  readonly #tables: Map<string, SinkTable>;
  /** Open buffers, one per partition, that new writes append to. */
  #buffers = new Map<string, PartitionBuffer>();
  /** Replayed ranges that are complete: flushed alone, before anything newer of their partition. */
  #sealed = new Map<string, PartitionBuffer>();
  /** Ranges recorded before a crash that must be replayed with exactly the same boundaries. */
  #replay = new Map<string, HeldReplay>();
  #lastSeen = new Map<string, bigint>();
  /** The claims of the partitions this writer owns (fencing, offsets.ts). */
  readonly #claims = new Map<string, Claim>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inflight: Promise<void> | undefined;
  #flushAgain = false;
  #failed: ClickHouseSinkError | undefined;
  #closed = false;
  readonly #abort = new AbortController();

  constructor(ch: ClickHouse, options: SinkWriterOptions) {
    const maxRows = options.maxRows ?? 50_000;
    this.#ch = ch;
    this.#o = {
      format: DEFAULT_FORMAT,
      maxDelayMs: 1000,
      maxBufferedRows: 4 * maxRows,
      recordOffsets: true,
      tokens: true,
      ...options,
      maxRows,
    };
    this.#tables = new Map(options.tables.map((t) => [t.table, t]));
    this.stats = {
      bufferedRows: 0,
      inflightRows: 0,
      waitingWrites: 0,
      flushes: 0,
      inserts: 0,
      rowsWritten: 0,
      lastFlushMs: 0,
      retry: newRetryStats(),
    };
  }

  /**
   * After a restart: the ranges from readCommittedOffsets. The worker seeks each partition to
   * `seekTo`; the writer then holds that partition's rows until exactly `last` has been written
   * and flushes them as one batch, so the tokens repeat those of the interrupted run.
   */
  /** The claims this writer holds (`topic/partition` → claim): checked before each insert of those partitions. */
  claimed(claims: readonly Claim[]): void {
    for (const c of claims) this.#claims.set(key(c.topic, c.partition), c);
  }

  expectReplay(ranges: readonly CommittedRange[]): void {
    for (const r of ranges)
      this.#replay.set(key(r.topic, r.partition), { first: BigInt(r.first), last: BigInt(r.last) });
  }

  /**
   * Buffers the rows produced from the records `range` of one partition, keyed by table.
   * Resolves at once unless the buffer is full; then it waits for a flush (backpressure).
   * Rejects with the flush's error once a flush has failed for good.
   */
  async write(range: SourceRange, rowsByTable: Readonly<Record<string, readonly Row[]>>): Promise<void> {
    if (this.#failed) throw this.#failed;
    if (this.#closed) throw new Error('SinkWriter is closed');
    const k = key(range.topic, range.partition);
    const first = BigInt(range.first);
    const last = BigInt(range.last);
    const seen = this.#lastSeen.get(k);
    if (last < first || (seen !== undefined && first <= seen)) {
      throw new Error(
        `SinkWriter: range ${first}-${last} of ${range.topic}/${range.partition} does not follow offset ${seen ?? '(none)'}`,
      );
    }
    let replay = this.#replay.get(k);
    let sealed = false;
    if (replay && !replay.sealed && first > replay.last) {
      const open = this.#buffers.get(k);
      if (open) {
        // The range's last records gave this sink no rows: what it holds is the whole replay, flushed before
        // this write's buffer as any completed replay.
        this.#seal(k, open, replay);
        sealed = true;
      } else {
        // No record of the range reached this sink: the consumer starts past it (the group committed beyond
        // it, so it was written). The worker skips such ranges when it knows the committed offset; kept, it
        // would hold the partition forever.
        this.#replay.delete(k);
        replay = undefined;
      }
    }
    if (replay && ((first <= replay.last && last > replay.last) || first < replay.first)) {
      throw new ClickHouseSinkError({
        code: 'CH_REPLAY_BOUNDARY',
        retriable: false,
        message: `SinkWriter: ${range.topic}/${range.partition} must replay offsets ${replay.first}-${replay.last} as one batch; split the records at offset ${replay.last} (got ${first}-${last})`,
      });
    }
    this.#lastSeen.set(k, last);
    let buf = this.#buffers.get(k);
    if (!buf) {
      buf = { topic: range.topic, partition: range.partition, first, last, rows: new Map(), count: 0 };
      this.#buffers.set(k, buf);
    }
    buf.last = last;
    for (const [table, rows] of Object.entries(rowsByTable)) {
      if (rows.length === 0) continue;
      if (!this.#tables.has(table)) throw new Error(`SinkWriter: table "${table}" is not one of this sink's tables`);
      let list = buf.rows.get(table);
      if (!list) {
        list = [];
        buf.rows.set(table, list);
      }
      for (const r of rows) list.push(r);
      buf.count += rows.length;
      this.stats.bufferedRows += rows.length;
    }
    if (replay !== undefined && !replay.sealed && last === replay.last) {
      // The replayed range is complete: later writes go to a new buffer, flushed after this one.
      this.#seal(k, buf, replay);
      sealed = true;
    }
    if (this.stats.bufferedRows >= this.#o.maxRows || sealed) {
      this.#requestFlush();
    } else if (this.#timer === undefined && this.#inflight === undefined) {
      this.#armTimer();
    }
    while (this.stats.bufferedRows + this.stats.inflightRows > this.#o.maxBufferedRows && !this.#failed) {
      const pending = this.#inflight ?? this.#startFlush();
      if (!pending) break; // nothing flushable: the rows are held for a replay boundary
      this.stats.waitingWrites++;
      try {
        await pending.catch(() => undefined);
      } finally {
        this.stats.waitingWrites--;
      }
    }
    if (this.#failed) throw this.#failed;
  }

  /** A partition's held rows become the replayed range: its recorded first and last offsets, so its token. */
  #seal(k: string, buf: PartitionBuffer, replay: HeldReplay): void {
    replay.sealed = true;
    buf.replayFirst = replay.first;
    buf.last = replay.last;
    this.#buffers.delete(k);
    this.#sealed.set(k, buf);
  }

  /**
   * Forgets a partition that was given away (rebalance): its unflushed rows are dropped (they
   * were not acknowledged, so the next owner reads them again) and so is its replay boundary.
   * Call `flush()` first to keep what can be written.
   */
  forget(topic: string, partition: number): void {
    const k = key(topic, partition);
    for (const m of [this.#buffers, this.#sealed]) {
      const buf = m.get(k);
      if (buf) this.stats.bufferedRows -= buf.count;
      m.delete(k);
    }
    this.#replay.delete(k);
    this.#lastSeen.delete(k);
    this.#claims.delete(k);
  }

  /** Flushes everything flushable now and waits for it (e.g. before a rebalance gives partitions away). */
  async flush(): Promise<void> {
    while (this.#inflight) await this.#inflight.catch(() => undefined);
    if (this.#failed) throw this.#failed;
    const p = this.#startFlush();
    if (p) await p;
    if (this.#failed) throw this.#failed;
  }

  /** Flushes (unless `abort`), then stops timers and pending retries. */
  async close(opts: { abort?: boolean } = {}): Promise<void> {
    if (opts.abort) this.#abort.abort();
    else await this.flush().catch(() => undefined);
    this.#closed = true;
    this.#abort.abort();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#inflight) await this.#inflight.catch(() => undefined);
  }

  /**
   * What the next flush takes: at most one buffer per partition (so that the offsets log's last
   * range is the only one that can be incomplete), completed replays first, and no buffer of a
   * partition whose replay is not complete yet.
   */
  #flushable(): PartitionBuffer[] {
    const out = [...this.#sealed.values()];
    for (const [k, b] of this.#buffers) if (!this.#replay.has(k)) out.push(b);
    return out;
  }

  #armTimer(): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#requestFlush();
    }, this.#o.maxDelayMs);
    this.#timer.unref?.();
  }

  /** One flush at a time: a request during a flush runs right after it. */
  #requestFlush(): void {
    if (this.#inflight) this.#flushAgain = true;
    else void this.#startFlush();
  }

  #startFlush(): Promise<void> | undefined {
    if (this.#inflight || this.#failed || this.#closed) return this.#inflight;
    const batch = this.#flushable();
    if (batch.length === 0) return undefined;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const b of batch) {
      const k = key(b.topic, b.partition);
      if (this.#sealed.get(k) === b) this.#sealed.delete(k);
      else this.#buffers.delete(k);
    }
    const rows = batch.reduce((n, b) => n + b.count, 0);
    this.stats.bufferedRows -= rows;
    this.stats.inflightRows += rows;
    const run = this.#flushBatch(batch)
      .catch((err: unknown) => {
        this.#failed = classifyError(err, { operation: 'flush' });
        throw this.#failed;
      })
      .finally(() => {
        this.stats.inflightRows -= rows;
        this.#inflight = undefined;
        const again = this.#flushAgain || this.stats.bufferedRows >= this.#o.maxRows;
        this.#flushAgain = false;
        if (this.#failed || this.#closed || this.#buffers.size + this.#sealed.size === 0) return;
        if (again) void this.#startFlush();
        else if (this.#timer === undefined) this.#armTimer();
      });
    this.#inflight = run;
    run.catch(() => undefined); // failures surface through write()/flush()
    return run;
  }

  async #flushBatch(batch: PartitionBuffer[]): Promise<void> {
    const started = performance.now();
    const retry: RetryOptions = {
      policy: defaultRetry,
      ...this.#o.retry,
      signal: this.#abort.signal,
      stats: this.stats.retry,
    };
    // During a replay the token must use the recorded range, whatever the first record now is.
    const ranges: SourceRange[] = batch.map((b) => ({
      topic: b.topic,
      partition: b.partition,
      first: (b.replayFirst ?? b.first).toString(),
      last: b.last.toString(),
      claim: this.#claims.get(key(b.topic, b.partition))?.claim ?? 0n,
    }));
    const logSink = this.#o.logSink ?? this.#o.sink;
    if (this.#o.recordOffsets) {
      await withRetry(() => recordRanges(this.#ch, this.#o.topology, logSink, ranges), retry, {
        table: '_pipelines_offsets',
        operation: 'insert',
      });
      // Recorded first, checked second (offsets.ts): a newer owner either sees the range or fences this flush.
      const claims = batch.flatMap((b) => this.#claims.get(key(b.topic, b.partition)) ?? []);
      if (claims.length > 0 && this.#o.owner !== undefined) {
        const owner = this.#o.owner;
        await withRetry(() => assertStillOwner(this.#ch, this.#o.topology, logSink, owner, claims), retry, {
          table: '_pipelines_claims',
          operation: 'read claims',
        });
      }
    }
    for (let i = 0; i < batch.length; i++) {
      const b = batch[i]!;
      const range = ranges[i]!;
      for (const [table, rows] of b.rows) {
        const spec = this.#tables.get(table)!;
        const token = this.#o.tokens
          ? dedupToken({ ...range, topology: this.#o.topology, sink: this.#o.sink, table: spec.tokenName ?? table })
          : undefined;
        await withRetry(
          () =>
            insertRows(this.#ch, table, rows, {
              columns: spec.columns,
              format: this.#o.format,
              ...(token !== undefined ? { token } : {}),
              ...(spec.database !== undefined ? { database: spec.database } : {}),
            }),
          retry,
          { table, operation: 'insert' },
        );
        this.stats.inserts++;
        this.stats.rowsWritten += rows.length;
      }
    }
    for (const b of batch) {
      if (b.replayFirst !== undefined) this.#replay.delete(key(b.topic, b.partition));
      this.#o.onAck?.({ topic: b.topic, partition: b.partition, next: (b.last + 1n).toString() });
    }
    this.stats.flushes++;
    this.stats.lastFlushMs = performance.now() - started;
  }
}
