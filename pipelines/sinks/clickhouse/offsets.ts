// Exactly-once bookkeeping kept in ClickHouse itself: insert tokens derived from the source
// position of a batch, and `_pipelines_offsets`, the log of batch ranges written before their data.
//
// Protocol (per source partition, one flush at a time): 1. record the batch range [first, last]
// here; 2. insert every table's rows with token(topology, sink, table, topic, partition, first, last);
// 3. only then start the next batch. After a crash the last recorded range is the only one that
// may be half written: replaying exactly that range yields the same tokens, so ClickHouse drops
// what had landed and writes what had not. Everything before it is complete.
//
// Several workers (one ClickHouse server): a partition's previous owner may still be flushing when
// the next one starts (it lost its group membership, or was stopped mid-flush). Fencing is by this
// log, not by the consumer group's generation, which the Kafka client does not expose and which the
// server could not compare anyway: each new owner first writes a claim numbered above every claim
// of the partition (`_pipelines_claims`), then reads the last range. A writer records its range,
// then checks that the newest claim is still its own, then inserts. So a writer that inserts had
// recorded its range before the newer claim existed, and the newer owner, reading after claiming,
// replays that range under the same tokens: ClickHouse keeps one copy. A writer that finds a newer
// claim stops (CH_FENCED) before inserting. Ranges carry their writer's claim, and the last range
// is the one of the newest claim, so a range a fenced writer recorded late is never replayed.

import type { ClickHouseSettings } from '@clickhouse/client';
import type { ClickHouse } from './connection.ts';
import { createTableSql, onCluster, qualifiedName, quoteIdent, quoteString, type TableSpec } from './ddl.ts';
import { ClickHouseSinkError, classifyError } from './errors.ts';

export const OFFSETS_TABLE = '_pipelines_offsets';
export const CLAIMS_TABLE = '_pipelines_claims';

/** Kafka offsets are int64; they travel as decimal strings, as in the Kafka client. */
export type Offset = string | number | bigint;

/** Where a batch came from. */
export interface SourceRange {
  topic: string;
  partition: number;
  /** First and last offset of the batch, inclusive. */
  first: Offset;
  last: Offset;
  /** The claim of the writer that recorded it (0: a writer that does not claim, such as a rebuild). */
  claim?: bigint;
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

/**
 * The sink's own tables, one row per (topology, sink, topic, partition) after merges: the one of the newest claim
 * (the last inserted among equals). Their rows differ by range or claim, so no dedup window is needed.
 */
function bookkeepingTable(table: string, columns: TableSpec['columns'], database?: string): TableSpec {
  return {
    table,
    ...(database ? { database } : {}),
    columns: [
      { name: 'topology', type: 'String' },
      { name: 'sink', type: 'String' },
      { name: 'topic', type: 'String' },
      { name: 'partition', type: 'UInt32' },
      ...columns,
    ],
    engine: { kind: 'ReplacingMergeTree', version: 'claim' },
    orderBy: ['topology', 'sink', 'topic', 'partition'],
    dedupWindow: 0,
  };
}

export function offsetsTableSpec(database?: string): TableSpec {
  return bookkeepingTable(
    OFFSETS_TABLE,
    [
      { name: 'first_offset', type: 'UInt64' },
      { name: 'last_offset', type: 'UInt64' },
      { name: 'written_at', type: 'DateTime', default: 'now()' },
      { name: 'claim', type: 'UInt64', default: '0' },
    ],
    database,
  );
}

export function claimsTableSpec(database?: string): TableSpec {
  return bookkeepingTable(
    CLAIMS_TABLE,
    [
      { name: 'claim', type: 'UInt64' },
      { name: 'owner', type: 'String' },
      { name: 'claimed_at', type: 'DateTime', default: 'now()' },
    ],
    database,
  );
}

/** Creates the offsets log and the claims; an offsets log from before claims is rebuilt with claim 0. */
export async function ensureOffsetsTable(ch: ClickHouse, database?: string): Promise<void> {
  const q = (table: string) => qualifiedName(table, database);
  const run = async (query: string, table: string) => {
    try {
      // On chdb settings stick to the session: the migration's insert must not carry another insert's token.
      await ch.client.command({
        query,
        ...(ch.kind === 'embedded' ? { clickhouse_settings: { async_insert: 0, insert_deduplication_token: '' } } : {}),
      });
    } catch (err) {
      throw classifyError(err, { table, operation: 'DDL' });
    }
  };
  await run(createTableSql(claimsTableSpec(database), ch), CLAIMS_TABLE);
  const created = await createQuery(ch, OFFSETS_TABLE, database);
  // By its engine, not its columns: `clickhouse apply` may have added the claim column to an old log.
  if (created !== undefined && !/ReplacingMergeTree\(`?claim`?\)/.test(created)) {
    // Rebuilt beside it and renamed over it in one statement; a start cut short begins again.
    const next = `${OFFSETS_TABLE}_migrating`;
    await run(`DROP TABLE IF EXISTS ${q(next)}${onCluster(ch)}`, next);
    await run(createTableSql({ ...offsetsTableSpec(database), table: next }, ch), next);
    await run(
      `INSERT INTO ${q(next)} (topology, sink, topic, partition, first_offset, last_offset)
        SELECT topology, sink, topic, partition, argMax(first_offset, last_offset), max(last_offset)
        FROM ${q(OFFSETS_TABLE)} GROUP BY topology, sink, topic, partition`,
      next,
    );
    const old = `${OFFSETS_TABLE}_before_claims`;
    await run(`DROP TABLE IF EXISTS ${q(old)}${onCluster(ch)}`, old);
    await run(
      `RENAME TABLE ${q(OFFSETS_TABLE)} TO ${q(old)}, ${q(next)} TO ${q(OFFSETS_TABLE)}${onCluster(ch)}`,
      OFFSETS_TABLE,
    );
    await run(`DROP TABLE ${q(old)}${onCluster(ch)}`, old);
  }
  await run(createTableSql(offsetsTableSpec(database), ch), OFFSETS_TABLE);
}

/** The table's CREATE statement as the server keeps it; undefined when there is no such table. */
async function createQuery(ch: ClickHouse, table: string, database?: string): Promise<string | undefined> {
  const db = database ? quoteString(database) : 'currentDatabase()';
  try {
    const rs = await ch.client.query({
      query: `SELECT create_table_query AS q FROM system.tables WHERE database = ${db} AND name = ${quoteString(table)}`,
      format: 'JSONEachRow',
    });
    return (await rs.json<{ q: string }>())[0]?.q;
  } catch (err) {
    throw classifyError(err, { table, operation: 'describe' });
  }
}

/**
 * Claims and ranges are read where they were written: on a cluster, written by a quorum of replicas and read with
 * sequential consistency, so a claim one worker made is seen by every other at once (the fence depends on it).
 */
function logSettings(ch: ClickHouse, op: 'insert' | 'read'): ClickHouseSettings {
  // On chdb settings stick to the session: reset any token another insert left behind.
  if (ch.kind === 'embedded') return op === 'insert' ? { insert_deduplication_token: '', async_insert: 0 } : {};
  if (!ch.cluster) return {};
  return op === 'insert'
    ? { insert_quorum: 'auto', insert_quorum_parallel: 0 }
    : { select_sequential_consistency: '1' };
}

/** A partition's newest claim: its number and its owner (ties, which only a race makes, go to the greater owner). */
async function newestClaims(
  ch: ClickHouse,
  topology: string,
  sink: string,
  partitions: ReadonlyArray<{ topic: string; partition: number }>,
  database?: string,
): Promise<Map<string, { claim: bigint; owner: string }>> {
  const out = new Map<string, { claim: bigint; owner: string }>();
  if (partitions.length === 0) return out;
  const wanted = partitions.map((p) => `(${quoteString(p.topic)}, ${p.partition})`).join(', ');
  try {
    const rs = await ch.client.query({
      clickhouse_settings: logSettings(ch, 'read'),
      query: `SELECT topic, partition, toString(max(claim)) AS newest, argMax(owner, tuple(claim, owner)) AS holder
        FROM ${qualifiedName(CLAIMS_TABLE, database)}
        WHERE topology = ${quoteString(topology)} AND sink = ${quoteString(sink)} AND (topic, partition) IN (${wanted})
        GROUP BY topic, partition`,
      format: 'JSONEachRow',
    });
    for (const r of await rs.json<{ topic: string; partition: number | string; newest: string; holder: string }>())
      out.set(`${r.topic}/${Number(r.partition)}`, { claim: BigInt(r.newest), owner: r.holder });
    return out;
  } catch (err) {
    throw classifyError(err, { table: CLAIMS_TABLE, operation: 'read claims' });
  }
}

/** Rows into the sink's own tables (`into`: the table as the insert names it), their columns those of the rows. */
async function insertBookkeeping(
  ch: ClickHouse,
  table: string,
  into: string,
  values: ReadonlyArray<Record<string, string | number>>,
): Promise<void> {
  try {
    await ch.client.insert({
      table: into,
      values,
      format: 'JSONEachRow',
      columns: Object.keys(values[0]!) as [string, ...string[]],
      clickhouse_settings: logSettings(ch, 'insert'),
    });
  } catch (err) {
    throw classifyError(err, { table, operation: 'insert' });
  }
}

/** A partition's claim by one owner. */
export interface Claim {
  topic: string;
  partition: number;
  claim: bigint;
}

/**
 * Claims partitions for `owner` before their last range is read: each claim numbered above the partition's
 * newest. Refuses (CH_FENCED) when another owner claimed the same number at the same moment.
 */
export async function claimPartitions(
  ch: ClickHouse,
  topology: string,
  sink: string,
  owner: string,
  partitions: ReadonlyArray<{ topic: string; partition: number }>,
  database?: string,
): Promise<Claim[]> {
  if (partitions.length === 0) return [];
  const before = await newestClaims(ch, topology, sink, partitions, database);
  const claims = partitions.map((p) => ({
    topic: p.topic,
    partition: p.partition,
    claim: (before.get(`${p.topic}/${p.partition}`)?.claim ?? 0n) + 1n,
  }));
  await insertBookkeeping(
    ch,
    CLAIMS_TABLE,
    database ? `${database}.${CLAIMS_TABLE}` : CLAIMS_TABLE,
    claims.map((c) => ({ topology, sink, ...c, claim: c.claim.toString(), owner })),
  );
  await assertStillOwner(ch, topology, sink, owner, claims, database);
  return claims;
}

/** Refuses (CH_FENCED) when a partition has a claim newer than this owner's: another worker writes it now. */
export async function assertStillOwner(
  ch: ClickHouse,
  topology: string,
  sink: string,
  owner: string,
  claims: readonly Claim[],
  database?: string,
): Promise<void> {
  const newest = await newestClaims(ch, topology, sink, claims, database);
  for (const c of claims) {
    const n = newest.get(`${c.topic}/${c.partition}`);
    if (n && (n.claim !== c.claim || n.owner !== owner)) {
      throw new ClickHouseSinkError({
        code: 'CH_FENCED',
        retriable: false,
        table: OFFSETS_TABLE,
        message:
          `partition ${c.partition} of ${c.topic} was taken over by another worker of sink ${sink} (its claim ` +
          `${n.claim} is newer than this worker's ${c.claim}): this worker stops without writing it; the new owner ` +
          'writes what this one had not committed, so nothing is lost or counted twice',
      });
    }
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
    claim: String(r.claim ?? 0n),
  }));
  await insertBookkeeping(ch, OFFSETS_TABLE, OFFSETS_TABLE, values);
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

/** The last recorded batch range per (topic, partition) of a topology's sink: the newest claim's last. */
export async function readCommittedOffsets(
  ch: ClickHouse,
  topology: string,
  sink: string,
  database?: string,
): Promise<CommittedRange[]> {
  const table = database ? `${quoteIdent(database)}.${quoteIdent(OFFSETS_TABLE)}` : quoteIdent(OFFSETS_TABLE);
  try {
    const rs = await ch.client.query({
      clickhouse_settings: logSettings(ch, 'read'),
      query: `SELECT topic, partition, toString(argMax(first_offset, tuple(claim, last_offset))) AS first,
          toString(argMax(last_offset, tuple(claim, last_offset))) AS last
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
