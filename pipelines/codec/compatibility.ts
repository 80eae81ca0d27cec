// Start-up check of the output schemas: find the subject's compatibility mode, ask the registry whether the schema
// passes it, register it, and stop with a clear message (subject, mode, reasons) when it does not. The same test
// and the avsc analysis serve `pipelines schemas check` (against the registry, or a file's version in git).
//
// Apicurio 3.3.3 (ccompat v7), as measured on the local stack:
// - GET /config answers NONE when no global rule is set (its default); GET /config/{subject} answers 404 for an
//   unknown subject and NONE for a subject without its own rule (setting NONE deletes the rule, so a subject-level
//   NONE never overrides a stricter global rule there): a subject NONE therefore falls back to the global level.
// - POST /compatibility/... on a subject without any rule still checks BACKWARD (is_compatible false for a changed
//   type), while registration under the same conditions accepts anything: under NONE the check is skipped.
// - verbose=true gives no messages; the 409 of a rejected registration does. The local avsc analysis below says
//   what is incompatible whatever the registry answers.

import { type AvroType, parseAvroSchema, schemaText } from './avro-types.ts';
import { CodecError, IncompatibleSchemaError, RegistryError } from './errors.ts';
import type { CompatibilityLevel, RegistryClient, SubjectVersion } from './registry.ts';

export interface CompatibilityMode {
  level: CompatibilityLevel;
  /** Where the level came from: the subject's own config or the global one. */
  source: 'subject' | 'global';
}

export type RegistryApi = Pick<
  RegistryClient,
  | 'getGlobalCompatibility'
  | 'getSubjectCompatibility'
  | 'testCompatibility'
  | 'register'
  | 'lookup'
  | 'getVersions'
  | 'getVersion'
>;

/** The level that applies to a subject: its own unless absent or NONE (Apicurio's "no rule"), else the global. */
export async function discoverCompatibility(registry: RegistryApi, subject: string): Promise<CompatibilityMode> {
  const own = await registry.getSubjectCompatibility(subject);
  if (own !== undefined && own !== 'NONE') return { level: own, source: 'subject' };
  return { level: await registry.getGlobalCompatibility(), source: 'global' };
}

export interface EnsureOptions {
  /** Register the schema when it is not yet under the subject (default true); false only checks. */
  autoRegister?: boolean;
}

export interface SchemaCheck {
  subject: string;
  schemaId: number;
  /** The subject version, when known (always for 'existing'). */
  version: number | undefined;
  mode: CompatibilityMode;
  /** existing: already registered as is; registered: registered now after passing the check. */
  action: 'existing' | 'registered';
}

export interface SchemaVerdict {
  mode: CompatibilityMode;
  /** The subject version holding this exact schema, when it is registered already. */
  existing: SubjectVersion | undefined;
  /** Why the registry refuses it under the mode (its messages, then avsc's); undefined when it passes. */
  incompatible: string[] | undefined;
}

/** Whether `schema` may go under `subject` as it stands: registered already, or passing the subject's level. */
export async function testSchema(
  registry: RegistryApi,
  subject: string,
  schema: string | object,
): Promise<SchemaVerdict> {
  const text = schemaText(schema, `schema for ${subject}`);
  const type = parseAvroSchema(text, `schema for ${subject}`);
  const existing = await registry.lookup(subject, text);
  const mode = await discoverCompatibility(registry, subject);
  if (existing || mode.level === 'NONE') return { mode, existing, incompatible: undefined };
  const transitive = mode.level.endsWith('_TRANSITIVE');
  const verdict = await registry.testCompatibility(subject, text, transitive ? 'all' : 'latest');
  if (verdict.compatible) return { mode, existing, incompatible: undefined };
  const local = await explainIncompatibility(registry, subject, type, mode.level);
  return { mode, existing, incompatible: [...verdict.messages, ...local] };
}

/** Finds or registers `schema` under `subject`; throws IncompatibleSchemaError or SCHEMA_NOT_REGISTERED. */
export async function ensureSchema(
  registry: RegistryApi,
  subject: string,
  schema: string | object,
  options: EnsureOptions = {},
): Promise<SchemaCheck> {
  const text = schemaText(schema, `schema for ${subject}`);
  const type = parseAvroSchema(text, `schema for ${subject}`);
  const { mode, existing, incompatible } = await testSchema(registry, subject, text);
  if (existing) {
    return { subject, schemaId: existing.id, version: existing.version, mode, action: 'existing' };
  }
  if (incompatible) throw new IncompatibleSchemaError(subject, describeMode(mode), incompatible);
  if (options.autoRegister === false) {
    throw new CodecError(
      'SCHEMA_NOT_REGISTERED',
      `schema for subject "${subject}" is not registered and auto-registration is off (it would pass ${describeMode(mode)})`,
      { subject },
    );
  }
  let schemaId: number;
  try {
    schemaId = await registry.register(subject, text);
  } catch (error) {
    if (error instanceof RegistryError && error.status === 409) {
      const local = await explainIncompatibility(registry, subject, type, mode.level);
      throw new IncompatibleSchemaError(subject, describeMode(mode), [stripRegistryNoise(error.message), ...local], {
        cause: error,
      });
    }
    throw error;
  }
  const registered = await registry.lookup(subject, text);
  return { subject, schemaId, version: registered?.version, mode, action: 'registered' };
}

/**
 * What avsc finds incompatible between `candidate` and the versions the mode compares it with (BACKWARD: the new
 * schema reads old data; FORWARD: old schemas read new data; FULL: both; _TRANSITIVE: every version, else the
 * latest). Empty when avsc sees no problem; the registry's verdict still decides.
 */
export async function explainIncompatibility(
  registry: Pick<RegistryApi, 'getVersions' | 'getVersion'>,
  subject: string,
  candidate: AvroType,
  level: CompatibilityLevel,
): Promise<string[]> {
  if (level === 'NONE') return [];
  const versions = await registry.getVersions(subject);
  const compared = level.endsWith('_TRANSITIVE') ? versions : versions.slice(-1);
  const reasons: string[] = [];
  for (const version of compared) {
    const old = await registry.getVersion(subject, version);
    let oldType: AvroType;
    try {
      oldType = parseAvroSchema(old.schema);
    } catch {
      continue;
    }
    reasons.push(...compareSchemas(candidate, oldType, level, `version ${version}`));
  }
  return reasons;
}

/**
 * What avsc finds incompatible between `candidate` and one older schema (`old`, named in the reasons) under a
 * level; pure, for the registry's versions as for a file's previous version in git.
 */
export function compareSchemas(
  candidate: AvroType,
  old: AvroType,
  level: CompatibilityLevel,
  oldName: string,
): string[] {
  const reasons: string[] = [];
  if (level.startsWith('BACKWARD') || level.startsWith('FULL')) {
    const problem = resolveProblem(candidate, old);
    if (problem) reasons.push(`new schema cannot read data written with ${oldName}: ${problem}`);
  }
  if (level.startsWith('FORWARD') || level.startsWith('FULL')) {
    const problem = resolveProblem(old, candidate);
    if (problem) reasons.push(`${oldName} cannot read data written with the new schema: ${problem}`);
  }
  return reasons;
}

function resolveProblem(reader: AvroType, writer: AvroType): string | undefined {
  try {
    reader.createResolver(writer);
    return undefined;
  } catch (error) {
    const at = locate(reader, writer, '');
    return at ? `${(error as Error).message} at ${at}` : (error as Error).message;
  }
}

interface Walkable {
  typeName: string;
  fields?: Array<{ name: string; type: AvroType; defaultValue(): unknown }>;
  itemsType?: AvroType;
  valuesType?: AvroType;
}

/** The deepest field path where `reader` stops resolving `writer` (records, arrays, maps), e.g. data.totalAmount. */
function locate(reader: AvroType, writer: AvroType, path: string): string | undefined {
  const r = reader as unknown as Walkable;
  const w = writer as unknown as Walkable;
  const inner: Array<[AvroType, AvroType, string]> = [];
  if (r.fields && w.fields) {
    // avsc stops at the first reader field that fails, in order; one the writer lacks without a default is named
    // in its message, at this level: the fields after it are not where the problem is.
    for (const field of r.fields) {
      const match = w.fields.find((f) => f.name === field.name);
      if (match) inner.push([field.type, match.type, path ? `${path}.${field.name}` : field.name]);
      else if (field.defaultValue() === undefined) break;
    }
  } else if (r.itemsType && w.itemsType) {
    inner.push([r.itemsType, w.itemsType, `${path}[]`]);
  } else if (r.valuesType && w.valuesType) {
    inner.push([r.valuesType, w.valuesType, `${path}{}`]);
  }
  for (const [rt, wt, p] of inner) {
    try {
      rt.createResolver(wt);
    } catch {
      return locate(rt, wt, p) ?? p;
    }
  }
  return path || undefined;
}

function describeMode(mode: CompatibilityMode): string {
  return `${mode.level} (${mode.source === 'subject' ? "the subject's level" : 'the global level'})`;
}

function stripRegistryNoise(message: string): string {
  return `registry: ${message.replace(/io\.apicurio\.[\w.]+Exception: /, '')}`;
}
