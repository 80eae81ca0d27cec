// Exactly-once bookkeeping kept in ClickHouse itself: insert tokens derived from the source
// position of a batch, and `_pipelines_offsets`, the log of batch ranges written before their data.
//
// Protocol (per source partition, one flush at a time): 1. record the batch range [first, last]
// here; 2. insert every table's rows with token(topology, sink, table, topic, partition, first, last);
// 3. only then start the next batch. After a crash the last recorded range is the only one that
// may be half written: replaying exactly that range yields the same tokens, so ClickHouse drops
// what had landed and writes what had not. Everything before it is complete.

import type { ClickHouse } from './connection.ts';
import { createTableSql, quoteIdent, quoteString, type TableSpec } from './ddl.ts';
import { classifyError } from './errors.ts';

export const OFFSETS_TABLE = '_pipelines_offsets';

/** Kafka offsets are int64; they travel as decimal strings, as in the Kafka client. */
export type Offset = string | number | bigint;

/** Where a batch came from. */
export interface SourceRange {
  topic: string;
  partition: number;
  /** First and last offset of the batch, inclusive. */
  first: Offset;
  last: Offset;
}

export interface TokenParts extends SourceRange {
  topology: string;
  sink: string;
  table: string;
}

/** The `insert_deduplication_token` of a batch: the same source range always gives the same token. */
export function dedupToken(p: TokenParts): string {
  const enc = encodeURIComponent;
  return [
    enc(p.topology),
    enc(p.sink),
    enc(p.table),
    enc(p.topic),
    p.partition,
    `${String(p.first)}-${String(p.last)}`,
  ].join('/');
}

export function offsetsTableSpec(database?: string): TableSpec {
  return {
    table: OFFSETS_TABLE,
    ...(database ? { database } : {}),
    columns: [
      { name: 'topology', type: 'String' },
      { name: 'sink', type: 'String' },
      { name: 'topic', type: 'String' },
      { name: 'partition', type: 'UInt32' },
      { name: 'first_offset', type: 'UInt64' },
      { name: 'last_offset', type: 'UInt64' },
      { name: 'written_at', type: 'DateTime', default: 'now()' },
    ],
    // One row per partition survives merges: the latest range.
    engine: { kind: 'ReplacingMergeTree', version: 'last_offset' },
    orderBy: ['topology', 'sink', 'topic', 'partition'],
    // Rows here differ by range, so no dedup window is needed (and none would hurt).
    dedupWindow: 0,
  };
}

export async function ensureOffsetsTable(ch: ClickHouse, database?: string): Promise<void> {
  try {
    await ch.client.command({ query: createTableSql(offsetsTableSpec(database)) });
  } catch (err) {
    throw classifyError(err, { table: OFFSETS_TABLE, operation: 'DDL' });
  }
}

/** Records the ranges of a flush before its data is written (step 1 of the protocol). */
export async function recordRanges(
  ch: ClickHouse,
  topology: string,
  sink: string,
  ranges: readonly SourceRange[],
): Promise<void> {
  if (ranges.length === 0) return;
  const values = ranges.map((r) => ({
    topology,
    sink,
    topic: r.topic,
    partition: r.partition,
    first_offset: String(r.first),
    last_offset: String(r.last),
  }));
  try {
    await ch.client.insert({
      table: OFFSETS_TABLE,
      values,
      format: 'JSONEachRow',
      columns: ['topology', 'sink', 'topic', 'partition', 'first_offset', 'last_offset'],
      // On chdb settings stick to the session: reset any token another insert left behind.
      ...(ch.kind === 'embedded' ? { clickhouse_settings: { insert_deduplication_token: '', async_insert: 0 } } : {}),
    });
  } catch (err) {
    throw classifyError(err, { table: OFFSETS_TABLE, operation: 'insert' });
  }
}

/** The last recorded range of a partition, and where a restarted consumer should seek. */
export interface CommittedRange {
  topic: string;
  partition: number;
  /** First and last offset of the last recorded batch (decimal strings). */
  first: string;
  last: string;
  /** Seek here and replay [first, last] as one batch with the same boundaries; it is then complete. */
  seekTo: string;
  /** The next offset after the replayed batch. */
  next: string;
}

/** The last recorded batch range per (topic, partition) of a topology's sink. */
export async function readCommittedOffsets(
  ch: ClickHouse,
  topology: string,
  sink: string,
  database?: string,
): Promise<CommittedRange[]> {
  const table = database ? `${quoteIdent(database)}.${quoteIdent(OFFSETS_TABLE)}` : quoteIdent(OFFSETS_TABLE);
  try {
    const rs = await ch.client.query({
      query: `SELECT topic, partition, toString(argMax(first_offset, last_offset)) AS first, toString(max(last_offset)) AS last
        FROM ${table} WHERE topology = ${quoteString(topology)} AND sink = ${quoteString(sink)}
        GROUP BY topic, partition ORDER BY topic, partition`,
      format: 'JSONEachRow',
    });
    const rows = await rs.json<{ topic: string; partition: number | string; first: string; last: string }>();
    return rows.map((r) => ({
      topic: r.topic,
      partition: Number(r.partition),
      first: r.first,
      last: r.last,
      seekTo: r.first,
      next: (BigInt(r.last) + 1n).toString(),
    }));
  } catch (err) {
    throw classifyError(err, { table: OFFSETS_TABLE, operation: 'read offsets' });
  }
}
