// Start-up check of the output schemas: find the subject's compatibility mode, ask the registry whether the schema
// passes it, register it, and stop with a clear message (subject, mode, reasons) when it does not.
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
import type { CompatibilityLevel, RegistryClient } from './registry.ts';

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

/** Finds or registers `schema` under `subject`; throws IncompatibleSchemaError or SCHEMA_NOT_REGISTERED. */
export async function ensureSchema(
  registry: RegistryApi,
  subject: string,
  schema: string | object,
  options: EnsureOptions = {},
): Promise<SchemaCheck> {
  const text = schemaText(schema, `schema for ${subject}`);
  const type = parseAvroSchema(text, `schema for ${subject}`);
  const existing = await registry.lookup(subject, text);
  const mode = await discoverCompatibility(registry, subject);
  if (existing) {
    return { subject, schemaId: existing.id, version: existing.version, mode, action: 'existing' };
  }
  if (mode.level !== 'NONE') {
    const transitive = mode.level.endsWith('_TRANSITIVE');
    const verdict = await registry.testCompatibility(subject, text, transitive ? 'all' : 'latest');
    if (!verdict.compatible) {
      const local = await explainIncompatibility(registry, subject, type, mode.level);
      throw new IncompatibleSchemaError(subject, describeMode(mode), [...verdict.messages, ...local]);
    }
  }
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
  const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
  const reasons: string[] = [];
  for (const version of compared) {
    const old = await registry.getVersion(subject, version);
    let oldType: AvroType;
    try {
      oldType = parseAvroSchema(old.schema);
    } catch {
      continue;
    }
    if (backward) {
      const problem = resolveProblem(candidate, oldType);
      if (problem) reasons.push(`new schema cannot read data written with version ${version}: ${problem}`);
    }
    if (forward) {
      const problem = resolveProblem(oldType, candidate);
      if (problem) reasons.push(`version ${version} cannot read data written with the new schema: ${problem}`);
    }
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
  fields?: Array<{ name: string; type: AvroType }>;
  itemsType?: AvroType;
  valuesType?: AvroType;
}

/** The deepest field path where `reader` stops resolving `writer` (records, arrays, maps), e.g. data.totalAmount. */
function locate(reader: AvroType, writer: AvroType, path: string): string | undefined {
  const r = reader as unknown as Walkable;
  const w = writer as unknown as Walkable;
  const inner: Array<[AvroType, AvroType, string]> = [];
  if (r.fields && w.fields) {
    for (const field of r.fields) {
      const match = w.fields.find((f) => f.name === field.name);
      if (match) inner.push([field.type, match.type, path ? `${path}.${field.name}` : field.name]);
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
