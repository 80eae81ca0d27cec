// Turns zod issues into located diagnostics, with `did you mean` hints for unknown keys and step kinds.
import type { z } from 'zod';
import type { Diagnostic } from '../topology/diagnostics.ts';
import { didYouMean } from '../topology/diagnostics.ts';
import type { Path, SourceFile } from '../topology/yaml.ts';
import { STEP_META_KEYS, StepStrict } from './items.ts';
import { sinks, sinksByKind, steps, stepsByKind } from './kinds.ts';

type Issue = z.core.$ZodIssue;

/** Validates `value` with `schema` and returns every problem, located in `src`, below `base`. */
export function validate(schema: z.ZodType, value: unknown, src: SourceFile, base: Path = []): Diagnostic[] {
  const r = schema.safeParse(value);
  if (r.success) return [];
  return issuesToDiagnostics(r.error.issues, schema, value, src, base);
}

function issuesToDiagnostics(
  issues: readonly Issue[],
  schema: z.ZodType,
  root: unknown,
  src: SourceFile,
  base: Path,
): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const issue of issues) {
    const path = [...base, ...(issue.path as (string | number)[])];
    const rel = issue.path as (string | number)[];
    const value = valueAt(root, rel);
    const where = path.length > 0 ? ` at ${path.join('.')}` : '';
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) {
          const known = keysAt(schema, rel);
          out.push(
            src.diagnostic(
              'schema-unknown-key',
              `unknown key '${key}'${where}`,
              [...path, key],
              didYouMean(key, known),
              src.locateKey([...path, key]),
            ),
          );
        }
        break;
      case 'invalid_type':
        if (value === undefined) {
          const key = path[path.length - 1];
          out.push(
            src.diagnostic(
              'schema-missing-key',
              `missing required key '${String(key)}'`,
              path.slice(0, -1),
              undefined,
              src.locate(path.slice(0, -1)),
            ),
          );
        } else {
          out.push(
            src.diagnostic('schema-invalid-type', `expected ${issue.expected}, got ${describe(value)}${where}`, path),
          );
        }
        break;
      case 'invalid_value': {
        const allowed = issue.values.map(String);
        out.push(
          src.diagnostic(
            'schema-invalid-value',
            `'${String(value)}' is not allowed${where}`,
            path,
            didYouMean(String(value), allowed) ?? `one of ${allowed.join(', ')}`,
          ),
        );
        break;
      }
      case 'invalid_union':
        out.push(...unionDiagnostics(issue, schema, root, rel, src, base));
        break;
      default:
        out.push(src.diagnostic('schema-invalid-value', `${issue.message}${where}`, path));
    }
  }
  return out;
}

/** Step and sink items are dispatched on their kind key; other unions report their closest branch. */
function unionDiagnostics(
  issue: Issue & { code: 'invalid_union' },
  schema: z.ZodType,
  root: unknown,
  rel: (string | number)[],
  src: SourceFile,
  base: Path,
): Diagnostic[] {
  const path = [...base, ...rel];
  const value = valueAt(root, rel);
  const isStep = rel.length === 3 && rel[0] === 'spec' && rel[1] === 'steps';
  const isSink = rel.length === 3 && rel[0] === 'spec' && rel[1] === 'sinks';
  if (isStep || isSink) return itemDiagnostics(isStep ? 'step' : 'sink', value, src, path);
  const branches = (issue.errors ?? []).filter((b) => b.length > 0);
  if (branches.length === 0)
    return [src.diagnostic('schema-invalid-value', `${issue.message} at ${path.join('.')}`, path)];
  // The branch whose first issue is deepest went furthest: it is most likely what was meant.
  const best = branches.sort((a, b) => depth(b) - depth(a) || a.length - b.length)[0]!;
  if (depth(best) === 0) {
    return [
      src.diagnostic(
        'schema-invalid-type',
        `unexpected ${describe(value)} at ${path.join('.')}`,
        path,
        `expected ${branches.map((b) => (b[0] as { expected?: string }).expected ?? '?').join(' or ')}`,
      ),
    ];
  }
  const sub = schemaAt(schema, rel);
  return issuesToDiagnostics(best, sub ?? schema, value, src, path);
}

function depth(issues: readonly Issue[]): number {
  return Math.max(0, ...issues.map((i) => i.path.length));
}

function itemDiagnostics(what: 'step' | 'sink', item: unknown, src: SourceFile, path: Path): Diagnostic[] {
  const kinds = what === 'step' ? steps.map((s) => s.kind) : sinks.map((s) => s.kind);
  const byKind = what === 'step' ? stepsByKind : sinksByKind;
  const meta: readonly string[] = what === 'step' ? STEP_META_KEYS : [];
  if (!item || typeof item !== 'object' || Array.isArray(item)) {
    return [
      src.diagnostic(
        'schema-invalid-type',
        `a ${what} is a map such as \`${kinds[0]}: ...\`, got ${describe(item)}`,
        path,
        `kinds: ${kinds.join(', ')}`,
      ),
    ];
  }
  const keys = Object.keys(item).filter((k) => !meta.includes(k));
  const known = keys.filter((k) => byKind.has(k));
  const unknown = keys.filter((k) => !byKind.has(k));
  const out: Diagnostic[] = [];
  if (known.length === 0 && unknown.length === 1) {
    const k = unknown[0]!;
    return [
      src.diagnostic(
        'step-unknown-kind',
        `unknown ${what} kind '${k}'`,
        [...path, k],
        didYouMean(k, kinds),
        src.locateKey([...path, k]),
      ),
    ];
  }
  if (known.length !== 1) {
    return [
      src.diagnostic(
        'step-ambiguous-kind',
        `a ${what} names exactly one kind, found ${keys.length === 0 ? 'none' : keys.map((k) => `'${k}'`).join(', ')}`,
        path,
        `kinds: ${kinds.join(', ')}`,
      ),
    ];
  }
  const kind = known[0]!;
  for (const k of unknown) {
    out.push(
      src.diagnostic(
        'schema-unknown-key',
        `unknown key '${k}' in a ${kind} ${what}`,
        [...path, k],
        didYouMean(k, [...meta, ...kinds]),
        src.locateKey([...path, k]),
      ),
    );
  }
  const strict = StepStrict(what, kind);
  const clean = Object.fromEntries(Object.entries(item).filter(([k]) => !unknown.includes(k)));
  out.push(...validate(strict, clean, src, path));
  return out;
}

function valueAt(root: unknown, path: readonly (string | number)[]): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return `string '${v.length > 30 ? `${v.slice(0, 30)}…` : v}'`;
  return `${typeof v} ${String(v)}`;
}

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  element?: z.ZodType;
  valueType?: z.ZodType;
  options?: z.ZodType[];
}

function defOf(s: z.ZodType): Def {
  return (s as unknown as { _zod: { def: Def } })._zod.def;
}

function unwrap(s: z.ZodType): z.ZodType {
  let cur = s;
  for (let i = 0; i < 20; i++) {
    const d = defOf(cur);
    if (d.innerType) cur = d.innerType;
    else if (d.type === 'pipe' && d.in) cur = d.in;
    else break;
  }
  return cur;
}

function schemaAt(schema: z.ZodType, path: readonly (string | number)[]): z.ZodType | undefined {
  let cur: z.ZodType | undefined = schema;
  for (const seg of path) {
    if (!cur) return undefined;
    const d = defOf(unwrap(cur));
    if (d.type === 'object') cur = d.shape?.[seg as string];
    else if (d.type === 'union') {
      // A step or sink item: the option that has this key.
      const option = (d.options ?? []).map(unwrap).find((o) => defOf(o).shape?.[seg as string] !== undefined);
      cur = option && defOf(option).shape?.[seg as string];
    } else if (d.type === 'array') cur = d.element;
    else if (d.type === 'record') cur = d.valueType;
    else return undefined;
  }
  return cur && unwrap(cur);
}

function keysAt(schema: z.ZodType, path: readonly (string | number)[]): string[] {
  const s = schemaAt(schema, path);
  if (!s) return [];
  const d = defOf(s);
  return d.type === 'object' ? Object.keys(d.shape ?? {}) : [];
}
