// Whether what the steps produce fits the Avro schema of a kafka sink, as avsc will encode it: each field the
// steps produce against the schema's type, through records, arrays and maps. Untyped values (`dyn`, a module's
// output) are the author's business; a record that fails here would fail to encode at run time.
import type avro from 'avsc';
import { avroFieldType, describeAvro } from '../../topology/avro.ts';
import { describeType, type FieldType } from '../../topology/types.ts';

export interface FieldMisfit {
  /** sink-column-type: it cannot be encoded; lint-field-nullable: it can, unless null; sink-unknown-column: a
   * field of a nested record that the record flowing in lacks. */
  code: 'sink-column-type' | 'lint-field-nullable' | 'sink-unknown-column';
  message: string;
  hint: string;
}

/** The misfits of what flows into the field at `path` (`customer.name`, `items[]`) of type `field`. */
export function fieldMisfits(field: avro.Type, flows: FieldType, path: string): FieldMisfit[] {
  if (flows.kind === 'dyn') return [];
  const branches = (field as avro.types.UnwrappedUnionType).types ?? [field];
  const values = branches.filter((b) => b.typeName !== 'null');
  const takesNull = values.length < branches.length;
  if (flows.kind === 'null') {
    return takesNull ? [] : [misfit(path, flows, field, `make it ${JSON.stringify(['null', avroSchemaFor(field)])}`)];
  }
  const out: FieldMisfit[] = [];
  if (flows.nullable && !takesNull) {
    out.push({
      code: 'lint-field-nullable',
      message: `field '${path}': a ${describeFlow(flows)} can be null, ${describeAvro(field)} cannot hold it`,
      hint: `make it ${JSON.stringify(['null', avroSchemaFor(field)])} with "default": null, or give a value in a map step (x != null ? x : …)`,
    });
  }
  // A union fits when one of its branches does; else the problems against the first.
  let first: FieldMisfit[] | undefined;
  for (const b of values) {
    const problems = branchMisfits(b, flows, path);
    if (problems.length === 0) return out;
    first ??= problems;
  }
  return [...out, ...(first ?? [])];
}

function branchMisfits(field: avro.Type, flows: FieldType, path: string): FieldMisfit[] {
  const wrong = (hint = `make it ${JSON.stringify(avroSchemaFor(flows))}`) => [misfit(path, flows, field, hint)];
  switch (field.typeName) {
    case 'record':
    case 'error': {
      if (flows.kind === 'map') return [];
      if (flows.kind !== 'record') return wrong();
      const out: FieldMisfit[] = [];
      for (const f of (field as avro.types.RecordType).fields) {
        const inner = flows.fields[f.name];
        const at = `${path}.${f.name}`;
        if (inner) out.push(...fieldMisfits(f.type, inner, at));
        else if (f.defaultValue() === undefined) {
          out.push({
            code: 'sink-unknown-column',
            message: `field '${at}' of ${describeAvro(field)} is not in the ${describeFlow(flows)} that flows in`,
            hint: `give it a default in the schema, or set ${f.name} in a map step`,
          });
        }
      }
      return out;
    }
    case 'array':
      return flows.kind === 'list'
        ? fieldMisfits((field as avro.types.ArrayType).itemsType, flows.items, `${path}[]`)
        : wrong();
    case 'map': {
      const values = (field as avro.types.MapType).valuesType;
      if (flows.kind === 'map') return fieldMisfits(values, flows.values, `${path}{}`);
      if (flows.kind === 'record')
        return Object.entries(flows.fields).flatMap(([k, t]) => fieldMisfits(values, t, `${path}.${k}`));
      return wrong();
    }
  }
  const want = avroFieldType(field);
  if (want.kind === 'dyn' || want.kind === flows.kind) {
    // Avro int and long take whole numbers only: avsc refuses to encode a fraction.
    if (want.kind === 'double' && flows.kind === 'double' && want.number && !flows.number) {
      return [
        {
          code: 'sink-column-type',
          message: `field '${path}': a ${describeFlow(flows)}, which may have a fraction, cannot go into ${describeAvro(field)}`,
          hint: 'round it in a map step (int(x)), or make it "double"',
        },
      ];
    }
    return [];
  }
  if (flows.kind === 'timestamp') return wrong('write epoch milliseconds (a number) rather than a timestamp()');
  if (want.kind === 'double' && flows.kind === 'string') return wrong('convert it in a map step (double(x))');
  if (want.kind === 'string' && flows.kind === 'double') return wrong('convert it in a map step (string(x))');
  return wrong();
}

function misfit(path: string, flows: FieldType, field: avro.Type, hint: string): FieldMisfit {
  return {
    code: 'sink-column-type',
    message: `field '${path}': a ${describeFlow(flows)} cannot go into ${describeAvro(field)}`,
    hint,
  };
}

/** What flows, for messages: its type, and what a number holds when known. */
function describeFlow(t: FieldType): string {
  const held = t.kind === 'double' && t.number ? ` (${t.number === 'epochMs' ? 'epoch ms' : t.number})` : '';
  return `${describeType(t)}${held}`;
}

/** The Avro type that holds a value of this type, for hints (a record only by name: its fields are many). */
function avroSchemaFor(t: FieldType | avro.Type): unknown {
  if ('typeName' in t) return t.name ?? t.schema();
  const base = (() => {
    switch (t.kind) {
      case 'double':
        return t.number === 'epochMs'
          ? { type: 'long', logicalType: 'timestamp-millis' }
          : t.number
            ? 'long'
            : 'double';
      case 'bool':
        return 'boolean';
      case 'list':
        return { type: 'array', items: avroSchemaFor(t.items) };
      case 'map':
        return { type: 'map', values: avroSchemaFor(t.values) };
      case 'record':
        return { type: 'record', name: t.name.split('|')[0]!.split('.').pop(), fields: '…' };
      case 'string':
      case 'bytes':
        return t.kind;
      default:
        return 'string';
    }
  })();
  return t.nullable ? ['null', base] : base;
}
