// From a topology's clickhouse sink to a table: columns (types given in the file, else from the types the
// steps produce), engine and keys; and the per-column conversion of values into what ClickHouse parses.
import { describeType, type FieldType, type Scope } from '../../topology/types.ts';
import type { ClickHouseSinkConfig } from './config.ts';
import type { ColumnSpec, EngineSpec, TableSpec } from './ddl.ts';

/**
 * The ClickHouse type for what a step produces: numbers by what they hold (a count UInt64, an integer Int64,
 * epoch milliseconds DateTime64(3), any other Float64), lists and maps of scalars as Array and Map, records and
 * anything untyped as JSON text in a String.
 */
export function clickHouseType(t: FieldType | undefined): string {
  if (!t) return 'String';
  if (t.kind === 'list') {
    const items = scalarType(t.items);
    return items ? `Array(${items})` : 'String';
  }
  if (t.kind === 'map') {
    const values = scalarType(t.values);
    return values ? `Map(String, ${values})` : 'String';
  }
  return scalarType(t) ?? 'String';
}

/** A scalar's column type (Nullable when it can be null); undefined for composites and untyped values. */
function scalarType(t: FieldType): string | undefined {
  const base = (() => {
    switch (t.kind) {
      case 'double':
        return t.number === 'count'
          ? 'UInt64'
          : t.number === 'integer'
            ? 'Int64'
            : t.number === 'epochMs'
              ? "DateTime64(3, 'UTC')"
              : 'Float64';
      case 'bool':
        return 'Bool';
      case 'timestamp':
        return "DateTime64(3, 'UTC')";
      case 'string':
        return 'String';
      default:
        return undefined;
    }
  })();
  return base && t.nullable ? `Nullable(${base})` : base;
}

export interface ColumnMisfit {
  /** `type`: it cannot be written; `lossy`: it can, losing something (a fraction). */
  kind: 'type' | 'lossy';
  message: string;
  hint: string;
}

const JSON_TEXT = /^(String|FixedString\(\d+\)|JSON\b.*|Object\(.*\)|Dynamic\b.*|Variant\(.*\))$/s;
const INTEGER_COLUMN = /^U?Int(8|16|32|64|128|256)$/;
const NUMBER_COLUMN = /^(U?Int\d+|Float(32|64)|BFloat16|Decimal\d*\(.*\)|Bool)$/s;
const TIME_COLUMN = /^(Date|Date32|DateTime|DateTime64)\b/;

/**
 * Whether a declared column can hold what flows into it, as the sink writes it (JSONEachRow: composites as JSON
 * text into String columns, numbers converted for integer, decimal and date columns). Untyped values (`dyn`) and
 * aggregate-function states are the author's business.
 */
export function columnMisfit(declared: string, t: FieldType): ColumnMisfit | undefined {
  const col = valueType(declared);
  if (t.kind === 'dyn' || t.kind === 'null' || JSON_TEXT.test(col) || /^AggregateFunction\(/.test(col))
    return undefined;
  const what = describeFlow(t);
  const misfit = (hint = `declare it ${clickHouseType(t)}`): ColumnMisfit => ({
    kind: 'type',
    message: `a ${what} cannot go into ${declared}`,
    hint,
  });
  const array = /^Array\((.*)\)$/s.exec(col);
  if (array) {
    if (t.kind !== 'list') return misfit();
    const inner = columnMisfit(array[1]!, t.items);
    return inner && { ...inner, message: `${inner.message} (the items of a ${what} into ${declared})` };
  }
  if (/^Map\(/.test(col)) return t.kind === 'map' || t.kind === 'record' ? undefined : misfit();
  if (/^(Tuple|Nested)\(/.test(col)) return t.kind === 'record' ? undefined : misfit();
  if (t.kind === 'list' || t.kind === 'map' || t.kind === 'record') {
    const count =
      t.kind === 'list' && INTEGER_COLUMN.test(col) ? '; for a count of distinct values, emit: onClose' : '';
    return misfit(`declare it ${clickHouseType(t)}${count}`);
  }
  if (NUMBER_COLUMN.test(col)) {
    if (t.kind === 'string' || t.kind === 'bytes' || t.kind === 'timestamp') {
      return misfit(`convert it in a map step (double(x)), or declare it ${clickHouseType(t)}`);
    }
    if (t.kind === 'double' && !t.number && INTEGER_COLUMN.test(col)) {
      return {
        kind: 'lossy',
        message: `a number with a fraction goes into ${declared}: the fraction is dropped`,
        hint: `declare it Float64 or Decimal(18, 2), or round it in a map step (int(x))`,
      };
    }
    return undefined;
  }
  if (TIME_COLUMN.test(col) && t.kind === 'bool') return misfit();
  return undefined;
}

/** What flows, for messages: its type, and what a number holds when known. */
function describeFlow(t: FieldType): string {
  const held = t.kind === 'double' && t.number ? ` (${t.number === 'epochMs' ? 'epoch ms' : t.number})` : '';
  return `${describeType(t)}${held}`;
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
