// The field types that flow through a topology's steps, as the validator sees them.
// Numbers policy: every number in an event (Avro int, long, float, double; JSON numbers) is a `double`
// inside expressions; integer literals mix with them (see expressions.ts) and results leave as JS numbers.

export type FieldType =
  | { kind: 'string' | 'bool' | 'bytes' | 'null' | 'dyn' | 'timestamp'; nullable?: boolean }
  | { kind: 'double'; number?: NumberSort; nullable?: boolean }
  | { kind: 'list'; items: FieldType; nullable?: boolean }
  | { kind: 'map'; values: FieldType; nullable?: boolean }
  | { kind: 'record'; name: string; fields: Record<string, FieldType>; nullable?: boolean };

/**
 * What a number holds, where the validator can tell: expressions see a number either way; sinks pick column
 * types from it (a count is UInt64, an Avro int or long Int64, a timestamp-millis or a window bound DateTime64).
 */
export type NumberSort = 'integer' | 'count' | 'epochMs';

/** The variables an expression can read at one step, with their types. */
export type Scope = Record<string, FieldType>;

export const DYN: FieldType = { kind: 'dyn' };
export const DOUBLE: FieldType = { kind: 'double' };
export const INTEGER: FieldType = { kind: 'double', number: 'integer' };
export const COUNT: FieldType = { kind: 'double', number: 'count' };
export const EPOCH_MS: FieldType = { kind: 'double', number: 'epochMs' };
export const STRING: FieldType = { kind: 'string' };
export const BOOL: FieldType = { kind: 'bool' };

export function nullable(t: FieldType): FieldType {
  return { ...t, nullable: true };
}

/** Two views of one field (event types on one topic, fold handlers) merged into one. */
export function mergeTypes(a: FieldType, b: FieldType): FieldType {
  const n = a.nullable || b.nullable ? { nullable: true } : {};
  if (a.kind === 'null') return { ...b, nullable: true };
  if (b.kind === 'null') return { ...a, nullable: true };
  if (a.kind === 'record' && b.kind === 'record') {
    const fields: Record<string, FieldType> = { ...a.fields };
    for (const [k, t] of Object.entries(b.fields)) fields[k] = fields[k] ? mergeTypes(fields[k], t) : t;
    return { kind: 'record', name: a.name === b.name ? a.name : `${a.name}|${b.name}`, fields, ...n };
  }
  if (a.kind === 'list' && b.kind === 'list') return { kind: 'list', items: mergeTypes(a.items, b.items), ...n };
  if (a.kind === 'map' && b.kind === 'map') return { kind: 'map', values: mergeTypes(a.values, b.values), ...n };
  if (a.kind === 'double' && b.kind === 'double') {
    return { kind: 'double', ...(a.number && a.number === b.number ? { number: a.number } : {}), ...n };
  }
  if (a.kind === b.kind) return { ...a, ...n };
  return { kind: 'dyn' };
}

/** The fields of the record at `path` in a scope, for hints; undefined when the path is not a record. */
export function fieldsAt(scope: Scope, path: readonly string[]): string[] | undefined {
  if (path.length === 0) return Object.keys(scope);
  let t: FieldType | undefined = scope[path[0]!];
  for (const seg of path.slice(1)) {
    if (t?.kind !== 'record') return undefined;
    t = t.fields[seg];
  }
  return t?.kind === 'record' ? Object.keys(t.fields) : undefined;
}

export function describeType(t: FieldType): string {
  const q = t.nullable ? '?' : '';
  switch (t.kind) {
    case 'list':
      return `list<${describeType(t.items)}>${q}`;
    case 'map':
      return `map<string, ${describeType(t.values)}>${q}`;
    case 'record':
      return `${t.name}${q}`;
    default:
      return `${t.kind}${q}`;
  }
}

/** A type written in YAML (module outputs, declared columns): `string`, `double`, `list<string>`, `bool?`. */
export function parseTypeName(s: string): FieldType | undefined {
  const name = s.trim();
  if (name.endsWith('?')) {
    const inner = parseTypeName(name.slice(0, -1));
    return inner && nullable(inner);
  }
  const list = /^list<(.+)>$/.exec(name);
  if (list) {
    const items = parseTypeName(list[1]!);
    return items && { kind: 'list', items };
  }
  const map = /^map<(?:string,\s*)?(.+)>$/.exec(name);
  if (map) {
    const values = parseTypeName(map[1]!);
    return values && { kind: 'map', values };
  }
  switch (name) {
    case 'int':
    case 'long':
      return INTEGER;
    case 'float':
    case 'double':
    case 'number':
      return DOUBLE;
    case 'string':
    case 'bool':
    case 'bytes':
    case 'dyn':
    case 'timestamp':
      return { kind: name };
    case 'boolean':
      return BOOL;
    default:
      return undefined;
  }
}

/** Map a CEL result type name (from the type checker) to a field type; CEL ints become numbers on output. */
export function fromCelType(name: string, named: ReadonlyMap<string, FieldType>): FieldType {
  const s = name.trim();
  const list = /^list<(.+)>$/.exec(s);
  if (list) return { kind: 'list', items: fromCelType(list[1]!, named) };
  const map = /^map<[^,]+,\s*(.+)>$/.exec(s);
  if (map) return { kind: 'map', values: fromCelType(map[1]!, named) };
  switch (s) {
    case 'int':
    case 'uint':
      return INTEGER;
    case 'double':
      return DOUBLE;
    case 'string':
      return STRING;
    case 'bool':
      return BOOL;
    case 'bytes':
      return { kind: 'bytes' };
    case 'null_type':
      return { kind: 'null' };
    case 'google.protobuf.Timestamp':
      return { kind: 'timestamp' };
    default:
      return named.get(s) ?? DYN;
  }
}
