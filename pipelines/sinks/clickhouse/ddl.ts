// Table DDL from a column list: CREATE TABLE IF NOT EXISTS for the MergeTree family, and a diff
// against system.columns that adds columns freely but refuses changes and drops unless allowed.

import type { ClickHouse } from './connection.ts';
import { ClickHouseSinkError, classifyError } from './errors.ts';

export interface ColumnSpec {
  name: string;
  /** ClickHouse type as written in DDL, e.g. `LowCardinality(String)`, `AggregateFunction(sum, Float64)`. */
  type: string;
  /** SQL expression for DEFAULT. */
  default?: string;
  codec?: string;
  comment?: string;
}

export type EngineSpec =
  | { kind: 'MergeTree' }
  | { kind: 'ReplacingMergeTree'; version?: string }
  | { kind: 'SummingMergeTree'; columns?: readonly string[] }
  | { kind: 'AggregatingMergeTree' }
  /** Accepts inserts and keeps nothing: the input of materialized views. */
  | { kind: 'Null' };

export interface TableSpec {
  table: string;
  database?: string;
  columns: readonly ColumnSpec[];
  engine: EngineSpec;
  /** ORDER BY expressions; required by the MergeTree family, `tuple()` when empty. */
  orderBy?: readonly string[];
  partitionBy?: string;
  primaryKey?: readonly string[];
  ttl?: string;
  /**
   * How many recent insert tokens a non-replicated MergeTree remembers for deduplication
   * (`non_replicated_deduplication_window`). Default 1000, needed for exactly-once inserts;
   * 0 leaves the setting out (old servers do not know it).
   */
  dedupWindow?: number;
  settings?: Readonly<Record<string, string | number>>;
}

export const DEFAULT_DEDUP_WINDOW = 1000;

/**
 * Where DDL runs. `cluster`: a ClickHouse cluster (one shard, its replicas): tables are created `ON CLUSTER`,
 * MergeTree engines become their Replicated kind (data in Keeper under the `{shard}` and `{replica}` macros each
 * server defines), and insert tokens are deduplicated through the replicated log instead of
 * `non_replicated_deduplication_window`.
 */
export interface DdlTarget {
  cluster?: string | undefined;
  /** With a cluster: a `Distributed` table `<table>_all` beside each read model, for queries over every shard. */
  distributed?: boolean | undefined;
}

/** The `Distributed` table over a read model on a cluster (reads only: the sink writes the local table). */
export function distributedTableSql(spec: Pick<TableSpec, 'table' | 'database'>, cluster: string): string {
  const db = spec.database ? quoteString(spec.database) : 'currentDatabase()';
  return (
    `CREATE TABLE IF NOT EXISTS ${qualifiedName(`${spec.table}_all`, spec.database)} ON CLUSTER ${quoteIdent(cluster)}` +
    ` AS ${qualifiedName(spec.table, spec.database)}` +
    ` ENGINE = Distributed(${quoteIdent(cluster)}, ${db}, ${quoteString(spec.table)})`
  );
}

/** The engine's name as system.tables shows it on the target (`ReplicatedSummingMergeTree` on a cluster). */
export function engineName(e: EngineSpec, target: DdlTarget = {}): string {
  return target.cluster && e.kind !== 'Null' ? `Replicated${e.kind}` : e.kind;
}

/** ` ON CLUSTER <name>` on a cluster, else nothing. */
export function onCluster(target: DdlTarget = {}): string {
  return target.cluster ? ` ON CLUSTER ${quoteIdent(target.cluster)}` : '';
}

/** Quotes an identifier with backticks. */
export function quoteIdent(name: string): string {
  return `\`${name.replace(/\\/g, '\\\\').replace(/`/g, '\\`')}\``;
}

export function quoteString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export function qualifiedName(table: string, database?: string): string {
  return database ? `${quoteIdent(database)}.${quoteIdent(table)}` : quoteIdent(table);
}

function columnSql(c: ColumnSpec): string {
  let sql = `${quoteIdent(c.name)} ${c.type}`;
  if (c.default !== undefined) sql += ` DEFAULT ${c.default}`;
  if (c.comment !== undefined) sql += ` COMMENT ${quoteString(c.comment)}`;
  if (c.codec !== undefined) sql += ` CODEC(${c.codec})`;
  return sql;
}

function engineSql(e: EngineSpec, target: DdlTarget): string {
  const name = engineName(e, target);
  const args: string[] = [];
  if (target.cluster && e.kind !== 'Null') args.push("'/clickhouse/tables/{shard}/{database}/{table}'", "'{replica}'");
  if (e.kind === 'ReplacingMergeTree' && e.version) args.push(quoteIdent(e.version));
  if (e.kind === 'SummingMergeTree' && e.columns?.length) args.push(`(${e.columns.map(quoteIdent).join(', ')})`);
  return args.length > 0 ? `${name}(${args.join(', ')})` : name;
}

/** CREATE TABLE IF NOT EXISTS for the spec. */
export function createTableSql(spec: TableSpec, target: DdlTarget = {}): string {
  if (spec.columns.length === 0) throw new Error(`table "${spec.table}" has no columns`);
  const lines = [
    `CREATE TABLE IF NOT EXISTS ${qualifiedName(spec.table, spec.database)}${onCluster(target)}`,
    `(\n  ${spec.columns.map(columnSql).join(',\n  ')}\n)`,
    `ENGINE = ${engineSql(spec.engine, target)}`,
  ];
  if (spec.engine.kind === 'Null') return lines.join('\n');
  if (spec.partitionBy) lines.push(`PARTITION BY ${spec.partitionBy}`);
  lines.push(`ORDER BY ${spec.orderBy?.length ? `(${spec.orderBy.join(', ')})` : 'tuple()'}`);
  if (spec.primaryKey?.length) lines.push(`PRIMARY KEY (${spec.primaryKey.join(', ')})`);
  if (spec.ttl) lines.push(`TTL ${spec.ttl}`);
  const settings: Record<string, string | number> = {};
  const window = spec.dedupWindow ?? DEFAULT_DEDUP_WINDOW;
  // Replicated tables deduplicate in Keeper (replicated_deduplication_window, on by default).
  if (window > 0 && !target.cluster) settings.non_replicated_deduplication_window = window;
  Object.assign(settings, spec.settings);
  const entries = Object.entries(settings);
  if (entries.length > 0) {
    lines.push(
      `SETTINGS ${entries.map(([k, v]) => `${k} = ${typeof v === 'number' ? v : quoteString(v)}`).join(', ')}`,
    );
  }
  return lines.join('\n');
}

/** A column as system.columns reports it. */
export interface ExistingColumn {
  name: string;
  type: string;
}

export interface ColumnDiff {
  /** Columns to add: safe, existing rows get the default. */
  add: ColumnSpec[];
  /** Columns whose type differs: destructive (a conversion of existing data). */
  change: { name: string; from: string; to: string }[];
  /** Columns in the table but not in the spec: destructive. */
  drop: string[];
}

/** Compares types modulo whitespace (system.columns writes `Decimal(18, 2)`, a spec may write `Decimal(18,2)`). */
export function normalizeType(type: string): string {
  let out = '';
  let quote: string | undefined;
  for (const ch of type) {
    if (quote) {
      out += ch;
      if (ch === quote) quote = undefined;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (!/\s/.test(ch)) {
      out += ch;
    }
  }
  return out;
}

export function diffColumns(wanted: readonly ColumnSpec[], existing: readonly ExistingColumn[]): ColumnDiff {
  const have = new Map(existing.map((c) => [c.name, c.type]));
  const want = new Set(wanted.map((c) => c.name));
  const diff: ColumnDiff = { add: [], change: [], drop: [] };
  for (const c of wanted) {
    const type = have.get(c.name);
    if (type === undefined) diff.add.push(c);
    else if (normalizeType(type) !== normalizeType(c.type)) diff.change.push({ name: c.name, from: type, to: c.type });
  }
  for (const c of existing) if (!want.has(c.name)) diff.drop.push(c.name);
  return diff;
}

export function isDestructive(diff: ColumnDiff): boolean {
  return diff.change.length > 0 || diff.drop.length > 0;
}

/** ALTER TABLE statements for a diff: adds first, then (only when allowed) type changes and drops. */
export function alterTableSql(
  spec: Pick<TableSpec, 'table' | 'database'>,
  diff: ColumnDiff,
  allowDestructive = false,
  target: DdlTarget = {},
): string[] {
  const name = `${qualifiedName(spec.table, spec.database)}${onCluster(target)}`;
  const out = diff.add.map((c) => `ALTER TABLE ${name} ADD COLUMN IF NOT EXISTS ${columnSql(c)}`);
  if (allowDestructive) {
    for (const c of diff.change) out.push(`ALTER TABLE ${name} MODIFY COLUMN ${quoteIdent(c.name)} ${c.to}`);
    for (const c of diff.drop) out.push(`ALTER TABLE ${name} DROP COLUMN IF EXISTS ${quoteIdent(c)}`);
  }
  return out;
}

/** The table's columns from system.columns, in table order; empty when the table does not exist. */
export async function describeColumns(ch: ClickHouse, table: string, database?: string): Promise<ExistingColumn[]> {
  const db = database ? quoteString(database) : 'currentDatabase()';
  try {
    const rs = await ch.client.query({
      query: `SELECT name, type FROM system.columns WHERE database = ${db} AND table = ${quoteString(table)} ORDER BY position`,
      format: 'JSONEachRow',
    });
    return await rs.json<ExistingColumn>();
  } catch (err) {
    throw classifyError(err, { table, operation: 'describe' });
  }
}

export interface EnsureTableResult {
  created: boolean;
  diff: ColumnDiff;
  applied: string[];
}

/**
 * Creates the table if it is missing, otherwise adds the missing columns. Type changes and
 * drops are refused with CH_SCHEMA_CHANGE_REFUSED unless `allowDestructive` is set.
 */
export async function ensureTable(
  ch: ClickHouse,
  spec: TableSpec,
  opts: { allowDestructive?: boolean } = {},
): Promise<EnsureTableResult> {
  const run = async (sql: string) => {
    try {
      await ch.client.command({ query: sql });
    } catch (err) {
      throw classifyError(err, { table: spec.table, operation: 'DDL' });
    }
  };
  const existing = await describeColumns(ch, spec.table, spec.database);
  if (existing.length === 0) {
    const sql = createTableSql(spec, ch);
    await run(sql);
    return { created: true, diff: { add: [], change: [], drop: [] }, applied: [sql] };
  }
  const diff = diffColumns(spec.columns, existing);
  if (isDestructive(diff) && !opts.allowDestructive) {
    const parts = [
      ...diff.change.map((c) => `column "${c.name}" would change type ${c.from} -> ${c.to}`),
      ...diff.drop.map((c) => `column "${c}" would be dropped`),
    ];
    throw new ClickHouseSinkError({
      code: 'CH_SCHEMA_CHANGE_REFUSED',
      retriable: false,
      table: spec.table,
      ...(diff.change[0] ? { column: diff.change[0].name } : diff.drop[0] ? { column: diff.drop[0] } : {}),
      message: `table "${spec.table}": refusing a destructive schema change (${parts.join('; ')}); allow destructive changes to apply it`,
    });
  }
  const statements = alterTableSql(spec, diff, opts.allowDestructive === true);
  for (const sql of statements) await run(sql);
  return { created: false, diff, applied: statements };
}
