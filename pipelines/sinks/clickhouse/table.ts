// From a topology's clickhouse sink to a table: columns (types given in the file, else from the types the
// steps produce), engine and keys; and the per-column conversion of values into what ClickHouse parses.
import type { FieldType, Scope } from '../../topology/types.ts';
import type { ClickHouseSinkConfig } from './config.ts';
import type { ColumnSpec, EngineSpec, TableSpec } from './ddl.ts';

/** The ClickHouse type for what a step produces; composite values are written as JSON text. */
export function clickHouseType(t: FieldType | undefined): string {
  if (!t) return 'String';
  const base = (() => {
    switch (t.kind) {
      case 'double':
        return 'Float64';
      case 'bool':
        return 'Bool';
      case 'timestamp':
        return "DateTime64(3, 'UTC')";
      default:
        return 'String';
    }
  })();
  return t.nullable && t.kind !== 'dyn' ? `Nullable(${base})` : base;
}

export function tableSpecFor(config: ClickHouseSinkConfig, scope: Scope): TableSpec {
  const [database, table] = config.table.includes('.') ? config.table.split('.', 2) : [undefined, config.table];
  const names = config.columns
    ? Array.isArray(config.columns)
      ? config.columns
      : Object.keys(config.columns)
    : Object.keys(scope);
  const typed = config.columns && !Array.isArray(config.columns) ? config.columns : {};
  const columns: ColumnSpec[] = names.map((name) => ({ name, type: typed[name] ?? clickHouseType(scope[name]) }));
  const e = config.engine;
  const engine: EngineSpec =
    e?.type === 'ReplacingMergeTree'
      ? { kind: 'ReplacingMergeTree', ...(e.version ? { version: e.version } : {}) }
      : ({ kind: e?.type ?? 'MergeTree' } as EngineSpec);
  return {
    table: table!,
    ...(database ? { database } : {}),
    columns,
    engine,
    ...(e?.orderBy ? { orderBy: e.orderBy } : {}),
    ...(e?.partitionBy ? { partitionBy: e.partitionBy } : {}),
    ...(e?.ttl ? { ttl: e.ttl } : {}),
  };
}

type Convert = (v: unknown) => unknown;

/** The value type under wrappers that do not change how a value is written: Nullable, LowCardinality, SimpleAggregateFunction. */
export function valueType(type: string): string {
  let t = type.trim();
  for (;;) {
    const wrapped = /^(?:Nullable|LowCardinality)\((.*)\)$/s.exec(t);
    if (wrapped) {
      t = wrapped[1]!.trim();
      continue;
    }
    const simple = /^SimpleAggregateFunction\(\s*\w+\s*,(.*)\)$/s.exec(t);
    if (simple) {
      t = simple[1]!.trim();
      continue;
    }
    return t;
  }
}

/**
 * Event times are epoch milliseconds everywhere in a topology; ClickHouse date types want their own units.
 * Decimals are rounded to their scale here: ClickHouse truncates extra digits, so 12.3499999 (a float sum)
 * would become 12.34.
 */
function converter(type: string): Convert | undefined {
  const t = valueType(type);
  const dt64 = /^DateTime64\((\d)/.exec(t);
  if (dt64) {
    const scale = 10 ** (Number(dt64[1]) - 3);
    return (v) => (typeof v === 'number' ? Math.round(v * scale) : v);
  }
  if (/^DateTime\b/.test(t)) return (v) => (typeof v === 'number' ? Math.floor(v / 1000) : v);
  if (/^Date(32)?$/.test(t)) return (v) => (typeof v === 'number' ? Math.floor(v / 86_400_000) : v);
  if (/^(UInt|Int)\d+$/.test(t)) return (v) => (typeof v === 'number' ? Math.trunc(v) : v);
  const decimal = /^Decimal(?:\(\s*\d+\s*,\s*(\d+)\s*\)|(32|64|128|256)\(\s*(\d+)\s*\))$/.exec(t);
  if (decimal) {
    const digits = Number(decimal[1] ?? decimal[3]);
    const f = 10 ** digits;
    return (v) => (typeof v === 'number' ? Math.round(v * f) / f : v);
  }
  if (t === 'String') return (v) => (v !== null && typeof v === 'object' ? JSON.stringify(v) : v);
  return undefined;
}

/** Turns an output row (object) into the array of column values the insert sends. */
export function rowEncoder(columns: readonly ColumnSpec[]): (row: unknown) => unknown[] {
  const names = columns.map((c) => c.name);
  const convert = columns.map((c) => converter(c.type));
  return (row) => {
    const r = row as Record<string, unknown>;
    const out = new Array<unknown>(names.length);
    for (let i = 0; i < names.length; i++) {
      const v = r[names[i]!] ?? null;
      const f = convert[i];
      out[i] = f && v !== null ? f(v) : v;
    }
    return out;
  };
}
