// Parsing Avro schemas into avsc types with one fixed set of options, so readers and writers always agree.
// Logical types are not registered: timestamp-millis and timestamp-micros come out as plain numbers (epoch
// milliseconds / microseconds), which is cheaper than Date objects; encoders take numbers too.

import type { Resolver, Schema, Type } from 'avsc';
import avro from 'avsc';
import { CodecError } from './errors.ts';

export type AvroType = Type;
export type AvroResolver = Resolver;
/** A schema as JSON text, as a parsed object (e.g. from an .avsc file) or as an avsc type. */
export type AvroSchemaInput = string | object | AvroType;

/** avsc defaults (unions wrapped only when ambiguous, record classes) are kept: they are the fast path. */
export function parseAvroSchema(schema: AvroSchemaInput, what = 'schema'): AvroType {
  if (avro.Type.isType(schema)) return schema as AvroType;
  try {
    const raw = typeof schema === 'string' ? (JSON.parse(schema) as Schema) : (schema as Schema);
    return avro.Type.forSchema(raw);
  } catch (cause) {
    throw new CodecError('INVALID_SCHEMA', `${what} is not a valid Avro schema: ${(cause as Error).message}`, {
      cause,
    });
  }
}

/**
 * The JSON text sent to the registry: the schema exactly as given (a string as is, an object stringified). An avsc
 * type is refused: its export drops `logicalType` (none is registered), which would register a different schema.
 */
export function schemaText(schema: AvroSchemaInput, what = 'schema'): string {
  if (avro.Type.isType(schema)) {
    throw new CodecError('INVALID_SCHEMA', `${what}: pass the schema JSON (text or object), not an avsc type`);
  }
  return typeof schema === 'string' ? schema : JSON.stringify(schema);
}

/** Full name of a named type (records, enums, fixed), undefined for the others. */
export function fullNameOf(type: AvroType): string | undefined {
  return type.name;
}

/** Full name and qualified aliases, the names a writer can be matched to this reader by. */
export function namesOf(type: AvroType): string[] {
  // avsc already qualifies aliases with the type's namespace.
  return type.name ? [type.name, ...(type.aliases ?? [])] : [];
}
