// The tables of a topology's ClickHouse sinks, and the plan that brings a database to them: CREATE for a
// missing table, ADD COLUMN for new columns, and (only when allowed) type changes and drops. An engine or a
// sorting key that differs cannot be changed in place: the plan refuses it and names the rebuild command.
import type { Scope } from '../../topology/types.ts';
import type { SinkSpec } from '../spec.ts';
import type { ClickHouse } from './connection.ts';
import {
  alterTableSql,
  type ColumnDiff,
  createTableSql,
  type DdlTarget,
  describeColumns,
  diffColumns,
  distributedTableSql,
  engineName,
  isDestructive,
  quoteString,
  type TableSpec,
} from './ddl.ts';
import { ClickHouseSinkError, classifyError } from './errors.ts';
import { CLAIMS_TABLE, claimsTableSpec, OFFSETS_TABLE, offsetsTableSpec } from './offsets.ts';

export interface SinkTableSpec {
  /** The sink id in the topology (e.g. `clickhouse:order_summary`). */
  sinkId: string;
  /** The table name the topology gives (the name in insert tokens, whatever table the rows go to). */
  logical: string;
  spec: TableSpec;
}

/** Every ClickHouse table the sinks need, with `rename` applied to the physical name (a rebuild writes `t_<suffix>`). */
export function topologyTables(
  plan: { sinks: readonly { id: string; spec: SinkSpec; config: unknown; scope: Scope }[] },
  rename: (table: string) => string = (t) => t,
): SinkTableSpec[] {
  return plan.sinks.flatMap((s) =>
    (s.spec.needs(s.config, s.scope).tables ?? []).map((spec) => ({
      sinkId: s.id,
      logical: spec.table,
      spec: { ...spec, table: rename(spec.table) },
    })),
  );
}

export interface TablePlan {
  table: string;
  exists: boolean;
  /** Statements the plan runs, in order. */
  statements: string[];
  /** Changes it will not make (destructive without the flag, or impossible in place), each explained. */
  refused: Array<{ column?: string; reason: string }>;
  diff: ColumnDiff;
}

interface ExistingTable {
  engine: string;
  sorting_key: string;
  partition_key: string;
}

const bare = (sql: string) => sql.replace(/[`\s()]/g, '');

async function describeTable(ch: ClickHouse, spec: TableSpec): Promise<ExistingTable | undefined> {
  const db = spec.database ? quoteString(spec.database) : 'currentDatabase()';
  try {
    const rs = await ch.client.query({
      query: `SELECT engine, sorting_key, partition_key FROM system.tables WHERE database = ${db} AND name = ${quoteString(spec.table)}`,
      format: 'JSONEachRow',
    });
    return (await rs.json<ExistingTable>())[0];
  } catch (err) {
    throw classifyError(err, { table: spec.table, operation: 'describe' });
  }
}

/** What it takes to bring one table to its spec. */
export async function planTable(
  ch: ClickHouse,
  spec: TableSpec,
  opts: { allowDestructive?: boolean; rebuildHint?: string } = {},
): Promise<TablePlan> {
  const existing = await describeTable(ch, spec);
  const empty: ColumnDiff = { add: [], change: [], drop: [] };
  // The read models only: the offsets log and the claims are the sink's own, read where they are written.
  const readModel = spec.table !== OFFSETS_TABLE && spec.table !== CLAIMS_TABLE;
  const distributed = ch.cluster && ch.distributed && readModel ? [distributedTableSql(spec, ch.cluster)] : [];
  if (!existing)
    return {
      table: spec.table,
      exists: false,
      statements: [createTableSql(spec, ch), ...distributed],
      refused: [],
      diff: empty,
    };
  const refused: TablePlan['refused'] = [];
  const hint = opts.rebuildHint ?? 'rebuild the table with `pipelines replay <file> --into <suffix> --swap`';
  const engine = engineName(spec.engine, ch);
  if (existing.engine !== engine) {
    refused.push({ reason: `engine ${existing.engine} -> ${engine} cannot change in place; ${hint}` });
  }
  const wantKey = spec.orderBy?.length ? spec.orderBy.join(',') : '';
  if (spec.engine.kind !== 'Null' && bare(existing.sorting_key) !== bare(wantKey)) {
    refused.push({
      reason: `ORDER BY (${existing.sorting_key.replace(/^\((.*)\)$/, '$1')}) -> (${spec.orderBy?.join(', ') ?? ''}) cannot change in place; ${hint}`,
    });
  }
  if (bare(existing.partition_key) !== bare(spec.partitionBy ?? '')) {
    refused.push({
      reason: `PARTITION BY ${existing.partition_key || '(none)'} -> ${spec.partitionBy ?? '(none)'} cannot change in place; ${hint}`,
    });
  }
  const diff = diffColumns(spec.columns, await describeColumns(ch, spec.table, spec.database));
  if (isDestructive(diff) && !opts.allowDestructive) {
    for (const c of diff.change)
      refused.push({
        column: c.name,
        reason: `column "${c.name}" would change type ${c.from} -> ${c.to} (destructive: --allow-destructive)`,
      });
    for (const c of diff.drop)
      refused.push({ column: c, reason: `column "${c}" would be dropped (destructive: --allow-destructive)` });
  }
  return {
    table: spec.table,
    exists: true,
    statements: [
      ...alterTableSql(spec, diff, opts.allowDestructive === true, ch),
      // A Distributed table keeps the columns it was created with: it follows its table's changes.
      ...(distributed.length > 0
        ? alterTableSql({ ...spec, table: `${spec.table}_all` }, diff, opts.allowDestructive === true, ch)
        : []),
      ...distributed,
    ],
    refused,
    diff,
  };
}

/** Runs a plan; refuses (CH_SCHEMA_CHANGE_REFUSED, naming table and column) when it has refusals. */
export async function applyTablePlan(ch: ClickHouse, plan: TablePlan): Promise<void> {
  if (plan.refused.length > 0) {
    const first = plan.refused[0]!;
    throw new ClickHouseSinkError({
      code: 'CH_SCHEMA_CHANGE_REFUSED',
      retriable: false,
      table: plan.table,
      ...(first.column ? { column: first.column } : {}),
      message: `table "${plan.table}": refusing a schema change: ${plan.refused.map((r) => r.reason).join('; ')}`,
    });
  }
  for (const sql of plan.statements) {
    try {
      await ch.client.command({ query: sql });
    } catch (err) {
      throw classifyError(err, { table: plan.table, operation: 'DDL' });
    }
  }
}

/** The plan of every table of a topology, the offsets log first. */
export async function planTopologyTables(
  ch: ClickHouse,
  tables: readonly SinkTableSpec[],
  opts: { allowDestructive?: boolean } = {},
): Promise<TablePlan[]> {
  const out: TablePlan[] = [];
  for (const spec of neededTables(tables)) out.push(await planTable(ch, spec, opts));
  return out;
}

/** The plan from the topology alone, as for an empty database: every table created, nothing opened. */
export function planTopologyTablesOffline(tables: readonly SinkTableSpec[], target: DdlTarget = {}): TablePlan[] {
  const empty: ColumnDiff = { add: [], change: [], drop: [] };
  const sinks = new Set(tables.map((t) => t.spec));
  return neededTables(tables).map((spec) => ({
    table: spec.table,
    exists: false,
    statements: [
      createTableSql(spec, target),
      ...(target.cluster && target.distributed && sinks.has(spec) ? [distributedTableSql(spec, target.cluster)] : []),
    ],
    refused: [],
    diff: empty,
  }));
}

/** The offsets log and the claims of each database, then the sinks' tables. */
function neededTables(tables: readonly SinkTableSpec[]): TableSpec[] {
  const databases = [...new Set(tables.map((t) => t.spec.database))];
  return [...databases.flatMap((db) => [offsetsTableSpec(db), claimsTableSpec(db)]), ...tables.map((t) => t.spec)];
}
