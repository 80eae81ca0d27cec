// The ClickHouse sink of a topology: one table, created or migrated at start, rows batched by the
// exactly-once writer (offsets log + insert tokens), acknowledgements by partition offset to the worker.
import { randomUUID } from 'node:crypto';
import type { RetryPolicy } from '../../retry.ts';
import { type Ack, type ReplayRange, type Sink, type SinkRetries, type SourceRange, unsupervised } from '../sink.ts';
import type { ClickHouse } from './connection.ts';
import type { TableSpec } from './ddl.ts';
import { claimPartitions, ensureOffsetsTable, readCommittedOffsets } from './offsets.ts';
import { applyTablePlan, planTable } from './schema.ts';
import { assertSwapFinished } from './swap.ts';
import { rowEncoder } from './table.ts';
import { SinkWriter, type SinkWriterOptions } from './writer.ts';

export interface ClickHouseSinkOptions {
  id: string;
  topology: string;
  ch: ClickHouse;
  table: TableSpec;
  /** Allows column type changes and drops when the table exists (destructive). */
  allowDestructive?: boolean;
  /** The table name in insert tokens when the rows go to another table (a rebuild); default the table. */
  tokenName?: string;
  /** The key of this sink in `_pipelines_offsets`; default the id (a rebuild keeps its own). */
  logSink?: string;
  writer?: Pick<SinkWriterOptions, 'maxRows' | 'maxDelayMs' | 'maxBufferedRows' | 'format'>;
  /** Retries of each insert; default: the topology default, until the sink is closed. */
  retry?: RetryPolicy;
  /** Run at the first assignment, before anything is written; throws to refuse (an embedded engine shared). */
  firstAssignment?: () => Promise<void>;
  /** This worker's name in the partition claims (default: random per sink). */
  owner?: string;
}

export class ClickHouseSink implements Sink {
  readonly id: string;
  onAck: (ack: Ack) => void = () => {};
  retries: SinkRetries = unsupervised;
  readonly writer: SinkWriter;
  readonly #o: ClickHouseSinkOptions;
  readonly #encode: (row: unknown) => unknown[];
  /** The one-shot check of the first assignment (cleared once run). */
  #firstAssignment: (() => Promise<void>) | undefined;
  readonly #owner: string;

  constructor(o: ClickHouseSinkOptions) {
    this.id = o.id;
    this.#o = o;
    this.#firstAssignment = o.firstAssignment;
    this.#encode = rowEncoder(o.table.columns);
    this.#owner = o.owner ?? randomUUID();
    this.writer = new SinkWriter(o.ch, {
      topology: o.topology,
      sink: o.id,
      owner: this.#owner,
      ...(o.logSink ? { logSink: o.logSink } : {}),
      tables: [
        {
          table: o.table.table,
          columns: o.table.columns.map((c) => c.name),
          ...(o.table.database ? { database: o.table.database } : {}),
          ...(o.tokenName ? { tokenName: o.tokenName } : {}),
        },
      ],
      ...o.writer,
      retry: {
        ...(o.retry ? { policy: o.retry } : {}),
        onRetry: (err, attempt) => this.retries.retried(attempt, err),
      },
      onAck: (a) => this.onAck(a),
    });
  }

  /**
   * Creates or migrates the table and the offsets log: additive changes only, unless allowed; an engine or a
   * key that differs is refused (CH_SCHEMA_CHANGE_REFUSED naming the table, and the column when there is one).
   * A table whose swap with a rebuild was cut short is refused too (CH_SWAP).
   */
  async prepare(): Promise<void> {
    await ensureOffsetsTable(this.#o.ch, this.#o.table.database);
    await assertSwapFinished(this.#o.ch, this.#o.topology, this.id, this.#o.table.table, this.#o.table.database);
    const plan = await planTable(this.#o.ch, this.#o.table, { allowDestructive: this.#o.allowDestructive ?? false });
    await applyTablePlan(this.#o.ch, plan);
  }

  append(rows: readonly unknown[], range: SourceRange): Promise<void> {
    const encoded = new Array<unknown[]>(rows.length);
    for (let i = 0; i < rows.length; i++) encoded[i] = this.#encode(rows[i]);
    return this.writer.write(range, { [this.#o.table.table]: encoded });
  }

  get buffered(): number {
    return this.writer.stats.bufferedRows + this.writer.stats.inflightRows;
  }

  flush(): Promise<void> {
    return this.writer.flush();
  }

  /**
   * The last range recorded for each assigned partition that the group has not committed past: the worker
   * skips this sink for records before it and replays it exactly, so its insert tokens repeat.
   */
  async assigned(
    partitions: ReadonlyArray<{ topic: string; partition: number; committed: string | undefined }>,
  ): Promise<ReplayRange[]> {
    const check = this.#firstAssignment;
    this.#firstAssignment = undefined;
    await check?.();
    const logSink = this.#o.logSink ?? this.id;
    // Claimed before the log is read: a previous owner still flushing is then either seen or fenced.
    const claims = await claimPartitions(
      this.#o.ch,
      this.#o.topology,
      logSink,
      this.#owner,
      partitions,
      this.#o.table.database,
    );
    this.writer.claimed(claims);
    const recorded = await readCommittedOffsets(this.#o.ch, this.#o.topology, logSink, this.#o.table.database);
    const byTp = new Map(recorded.map((r) => [`${r.topic}/${r.partition}`, r]));
    const replay: ReplayRange[] = [];
    for (const p of partitions) {
      const r = byTp.get(`${p.topic}/${p.partition}`);
      if (!r) continue;
      if (p.committed !== undefined && BigInt(p.committed) > BigInt(r.last)) continue;
      replay.push({ topic: r.topic, partition: r.partition, first: r.first, last: r.last });
    }
    this.writer.expectReplay(replay.map((r) => ({ ...r, seekTo: r.first, next: (BigInt(r.last) + 1n).toString() })));
    return replay;
  }

  forget(topic: string, partition: number): void {
    this.writer.forget(topic, partition);
  }

  close(): Promise<void> {
    return this.writer.close();
  }
}
