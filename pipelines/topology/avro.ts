// Avro schemas (.avsc) read with avsc: their field types for the validator, their record constructors for the
// expression runtime, and a located check of JSON input events against them.
import { readFileSync } from 'node:fs';
import avro from 'avsc';
import type { FieldType } from './types.ts';
import { EPOCH_MS, INTEGER, mergeTypes } from './types.ts';

export type AvroType = avro.Type;

export interface LoadedSchema {
  file: string;
  type: avro.Type;
  /** Full name of the top-level record (`com.orders.events.OrderPlaced`), if it is one. */
  name: string | undefined;
  /** Short record name (`OrderPlaced`), the name `fold` handlers and `eventType` use. */
  shortName: string | undefined;
  fieldType: FieldType;
  /** The schema as written (JSON), what gets registered: an avsc type's export would drop logical types. */
  json: unknown;
}

/** Reads and parses one .avsc; throws an Error with a readable message. */
export function loadAvsc(file: string): LoadedSchema {
  const text = readFileSync(file, 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON: ${(err as Error).message}`);
  }
  const type = avro.Type.forSchema(json as avro.Schema, { wrapUnions: false, typeHook: markEpochMs });
  const name = type.typeName === 'record' ? type.name : undefined;
  return { file, type, name, shortName: name?.split('.').pop(), fieldType: avroFieldType(type), json };
}

/**
 * Longs written `timestamp-millis`. Without registered logical types avsc keeps no trace of them (values stay
 * epoch-ms numbers, as the steps want), so the hook makes each its own long type and remembers it.
 */
const epochMsTypes = new WeakSet<avro.Type>();
function markEpochMs(schema: avro.Schema): avro.Type | undefined {
  const s = schema as { type?: unknown; logicalType?: unknown };
  if (s.type !== 'long' || s.logicalType !== 'timestamp-millis') return undefined;
  const t = avro.Type.forSchema('long');
  epochMsTypes.add(t);
  return t;
}

export function avroFieldType(type: avro.Type): FieldType {
  switch (type.typeName) {
    case 'int':
    case 'long':
      return epochMsTypes.has(type) ? EPOCH_MS : INTEGER;
    case 'float':
    case 'double':
      return { kind: 'double' };
    case 'string':
    case 'enum':
      return { kind: 'string' };
    case 'boolean':
      return { kind: 'bool' };
    case 'bytes':
    case 'fixed':
      return { kind: 'bytes' };
    case 'null':
      return { kind: 'null' };
    case 'array':
      return { kind: 'list', items: avroFieldType((type as avro.types.ArrayType).itemsType) };
    case 'map':
      return { kind: 'map', values: avroFieldType((type as avro.types.MapType).valuesType) };
    case 'record':
    case 'error': {
      const rec = type as avro.types.RecordType;
      const fields: Record<string, FieldType> = {};
      for (const f of rec.fields) fields[f.name] = avroFieldType(f.type);
      return { kind: 'record', name: rec.name ?? 'record', fields };
    }
    default: {
      // Unions (wrapUnions false): merge the branches; logical types keep their underlying type.
      const branches = (type as avro.types.UnwrappedUnionType).types;
      if (Array.isArray(branches) && branches.length > 0) {
        return branches.map(avroFieldType).reduce(mergeTypes);
      }
      const underlying = (type as avro.types.LogicalType).underlyingType;
      return underlying ? avroFieldType(underlying) : { kind: 'dyn' };
    }
  }
}

/** Every record constructor in a type tree, so that decoded avsc records are readable in expressions. */
export function recordConstructors(type: avro.Type, into = new Map<string, new (...a: never[]) => unknown>()) {
  const walk = (t: avro.Type): void => {
    if (t.typeName === 'record' || t.typeName === 'error') {
      const rec = t as avro.types.RecordType;
      if (into.has(rec.name!)) return;
      into.set(rec.name!, rec.recordConstructor as unknown as new (...a: never[]) => unknown);
      for (const f of rec.fields) walk(f.type);
    } else if (t.typeName === 'array') walk((t as avro.types.ArrayType).itemsType);
    else if (t.typeName === 'map') walk((t as avro.types.MapType).valuesType);
    else {
      const branches = (t as avro.types.UnwrappedUnionType).types;
      if (Array.isArray(branches)) for (const b of branches) walk(b);
    }
  };
  walk(type);
  return into;
}

export interface ValueProblem {
  path: string;
  message: string;
}

/** Which schema a JSON value matches, or the problems against the most likely one. */
export function matchSchema(
  schemas: readonly LoadedSchema[],
  value: unknown,
  typeField = 'eventType',
): { schema: LoadedSchema } | { problems: ValueProblem[] } {
  const declared = value && typeof value === 'object' ? (value as Record<string, unknown>)[typeField] : undefined;
  // The schema the value names first: a record with fewer fields (extra fields are allowed) would take it too.
  const named = schemas.find((s) => s.shortName === declared);
  if (named?.type.isValid(value)) return { schema: named };
  for (const s of schemas) if (s.type.isValid(value)) return { schema: s };
  const likely = schemas.find((s) => s.shortName === declared) ?? schemas[0];
  if (!likely) return { problems: [{ path: '', message: 'no schema to check against' }] };
  const problems: ValueProblem[] = [];
  likely.type.isValid(value, {
    errorHook: (path: string[], v: unknown, t: avro.Type) => {
      const where = path.join('.') || '(root)';
      const got = v === undefined ? 'missing' : JSON.stringify(v)?.slice(0, 40);
      problems.push({ path: where, message: `${where}: expected ${describeAvro(t)}, got ${got}` });
    },
  });
  if (problems.length === 0) problems.push({ path: '', message: 'value does not match' });
  const names = schemas.map((s) => s.shortName).join(', ');
  if (schemas.length > 1 && !schemas.some((s) => s.shortName === declared)) {
    problems.unshift({ path: typeField, message: `${typeField} '${String(declared)}' is not one of ${names}` });
  }
  return { problems };
}

/** An Avro type as messages name it: `long`, `record com.x.Order`, `null | string`. */
export function describeAvro(t: avro.Type): string {
  if (t.typeName === 'record') return `record ${(t as avro.types.RecordType).name}`;
  const branches = (t as avro.types.UnwrappedUnionType).types;
  if (Array.isArray(branches)) return branches.map((b) => b.typeName).join(' | ');
  return t.typeName;
}
