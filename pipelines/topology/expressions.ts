// Expressions are CEL (@marcbachmann/cel-js): parsed and compiled once per topology, evaluated synchronously.
// Numbers policy (one rule, at the boundary):
//  - every number in a record (Avro int/long/float/double, JSON numbers) is a CEL `double` in expressions;
//  - integer literals stay CEL `int`, and `+ - * /` and `==` between double and int are registered, so
//    `event.data.totalAmount * 2` and `quantity == 1` just work; comparisons across them are built into CEL;
//  - a CEL `int` result (a literal, `int(x)`, `size(xs)`) leaves the expression as a JS number (exact up to 2^53,
//    beyond that an ExpressionError); `timestamp(...)` results stay JS Dates.
// Nothing here reaches the process, modules or the file system: CEL has no I/O, and no function is registered
// that has any.
import { setFlagsFromString } from 'node:v8';
import { Environment } from '@marcbachmann/cel-js';
import { didYouMean } from './diagnostics.ts';
import { refineType } from './number-sort.ts';
import type { FieldType, Scope } from './types.ts';
import { fromCelType } from './types.ts';

// CEL's `matches()` has RE2 semantics (linear time); the library runs it with JavaScript's backtracking RegExp,
// where `'aaaa…!'.matches('^(a+)+$')` takes minutes. V8 has a linear-time engine: with these flags a RegExp that
// backtracks too much switches to it, and a pattern compiled with the `l` flag is refused unless the engine can run
// it (no lookarounds, no backreferences, bounded repeats). The checker requires that of every pattern, so every
// `matches()` a topology runs is linear in its input.
setFlagsFromString('--enable-experimental-regexp-engine');
setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');

type Ctor = new (...a: never[]) => unknown;
const ENV_OPTIONS = { enableOptionalTypes: true, homogeneousAggregateLiterals: false } as const;

function registerNumbers(env: Environment): Environment {
  const ops: Record<string, (a: unknown, b: unknown) => unknown> = {
    '+': (a, b) => Number(a) + Number(b),
    '-': (a, b) => Number(a) - Number(b),
    '*': (a, b) => Number(a) * Number(b),
    '/': (a, b) => Number(a) / Number(b),
  };
  for (const [op, fn] of Object.entries(ops)) {
    env.registerOperator(`double ${op} int`, fn);
    env.registerOperator(`int ${op} double`, fn);
  }
  // Registering one direction of == registers both (and !=).
  env.registerOperator('double == int', (a: unknown, b: unknown) => a === Number(b));
  return env;
}

/** A typed runtime failure of one record; the error policy of the topology decides what happens to it. */
export class ExpressionError extends Error {
  readonly retriable = false;
  readonly expression: string;
  constructor(expression: string, cause: unknown) {
    const msg = (cause as Error)?.message?.split('\n')[0] ?? String(cause);
    super(`${msg} in '${expression}'`, { cause });
    this.name = 'ExpressionError';
    this.expression = expression;
  }
}

export interface CompiledExpression {
  readonly source: string;
  /** Evaluate on one record's variables; ints come back as numbers. Throws ExpressionError. */
  evaluate(vars: object): unknown;
}

/** One per plan: knows the record constructors of the Avro types it will see (avsc decodes to class instances). */
export class ExpressionRuntime {
  readonly #env: Environment;
  readonly #cache = new Map<string, CompiledExpression>();

  constructor(ctors: ReadonlyMap<string, Ctor> = new Map()) {
    const env = registerNumbers(new Environment({ ...ENV_OPTIONS, unlistedVariablesAreDyn: true }));
    for (const [name, ctor] of ctors) {
      try {
        env.registerType(name, { ctor } as never);
      } catch {
        // A name CEL reserves or one already registered: values of it are then read as plain objects.
      }
    }
    this.#env = env;
  }

  compile(source: string): CompiledExpression {
    const cached = this.#cache.get(source);
    if (cached) return cached;
    const path = fieldPath(source);
    if (path) {
      // The commonest expression, a field path (`event.data.orderId`), is read directly: the same result and
      // the same error as CEL for a missing field, at a fraction of the cost. Still no code from the YAML runs.
      const compiled: CompiledExpression = { source, evaluate: (vars) => readPath(vars, path, source) };
      this.#cache.set(source, compiled);
      return compiled;
    }
    const fn = this.#env.parse(source) as unknown as (vars: object) => unknown;
    const compiled: CompiledExpression = {
      source,
      evaluate(vars: object): unknown {
        let v: unknown;
        try {
          v = fn(vars);
        } catch (err) {
          throw new ExpressionError(source, err);
        }
        if (typeof v === 'bigint') return toNumber(v, source);
        if (typeof v === 'object' && v !== null) return outOfCel(v, source);
        return v;
      },
    };
    this.#cache.set(source, compiled);
    return compiled;
  }
}

const RESERVED = new Set([
  'true',
  'false',
  'null',
  'in',
  'as',
  'break',
  'const',
  'continue',
  'else',
  'for',
  'function',
  'if',
  'import',
  'let',
  'loop',
  'package',
  'namespace',
  'return',
  'var',
  'void',
  'while',
]);

/** The segments of an expression that is only a field path, or undefined. */
export function fieldPath(source: string): string[] | undefined {
  if (!/^\s*[A-Za-z_][A-Za-z0-9_]*(\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*\s*$/.test(source)) return undefined;
  const parts = source.split('.').map((p) => p.trim());
  return parts.some((p) => RESERVED.has(p) || p === '__proto__' || p === 'constructor' || p === 'prototype')
    ? undefined
    : parts;
}

function readPath(vars: object, path: readonly string[], source: string): unknown {
  let v: unknown = vars;
  for (let i = 0; i < path.length; i++) {
    const k = path[i]!;
    if (v === null || typeof v !== 'object') {
      const what = v === null ? 'null' : typeof v;
      throw new ExpressionError(
        source,
        new Error(i === 0 ? `Unknown variable: ${k}` : `No such key: ${k} (on ${what})`),
      );
    }
    if (v instanceof Map) {
      if (!v.has(k)) throw new ExpressionError(source, new Error(`No such key: ${k}`));
      v = v.get(k);
    } else {
      if (!Object.hasOwn(v, k))
        throw new ExpressionError(source, new Error(i === 0 ? `Unknown variable: ${k}` : `No such key: ${k}`));
      v = (v as Record<string, unknown>)[k];
    }
  }
  if (v === undefined) return null;
  if (typeof v === 'bigint') return toNumber(v, source);
  if (typeof v === 'object' && v !== null) return outOfCel(v, source);
  return v;
}

function toNumber(v: bigint, source: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new ExpressionError(source, new Error(`integer ${v} is beyond 2^53`));
  return n;
}

/** Converts the ints nested in lists and maps a CEL expression built. Only reached for object results. */
function outOfCel(v: unknown, source: string): unknown {
  if (typeof v === 'bigint') return toNumber(v, source);
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const c = outOfCel(v[i], source);
      if (c !== v[i]) {
        out ??= v.slice();
        out[i] = c;
      }
    }
    return out ?? v;
  }
  if (v instanceof Map) return outOfCel(Object.fromEntries(v), source);
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    let out: Record<string, unknown> | undefined;
    for (const [k, x] of Object.entries(v)) {
      const c = outOfCel(x, source);
      if (c !== x) {
        out ??= { ...(v as Record<string, unknown>) };
        out[k] = c;
      }
    }
    return out ?? v;
  }
  return v;
}

// ---- checking ---------------------------------------------------------------------------------------------

export interface ExpressionProblem {
  code: 'expr-syntax' | 'expr-unknown-field' | 'expr-type' | 'expr-not-bool' | 'expr-regex';
  message: string;
  /** Character offset in the expression. */
  offset: number;
  hint?: string;
}

export interface CheckResult {
  type?: FieldType;
  problems: ExpressionProblem[];
}

interface AstNode {
  op: string;
  args: unknown;
  pos: number;
  start: number;
}

const MACROS_BINDING = new Set(['map', 'filter', 'all', 'exists', 'exists_one']);

/** Checks expressions against the variables known at a step. One instance per validation run. */
export class ExpressionChecker {
  readonly #envs = new WeakMap<Scope, { env: Environment; named: Map<string, FieldType> }>();
  readonly #parser = registerNumbers(new Environment({ ...ENV_OPTIONS, unlistedVariablesAreDyn: true }));

  check(source: string, scope: Scope, opts: { bool?: boolean } = {}): CheckResult {
    if (typeof source !== 'string') return { problems: [] };
    let ast: AstNode;
    try {
      ast = (this.#parser.parse(source) as unknown as { ast: AstNode }).ast;
    } catch (err) {
      const e = err as Error & { node?: { start?: number } };
      return {
        problems: [{ code: 'expr-syntax', message: firstLine(e), offset: e.node?.start ?? 0 }],
      };
    }
    const problems: ExpressionProblem[] = [];
    walkFields(ast, scope, new Map(), problems);
    checkPatterns(ast, problems);
    if (problems.length > 0) return { problems };
    const { env, named } = this.#envFor(scope);
    let result: { valid: boolean; type?: string; error?: Error & { node?: { start?: number } } };
    try {
      result = env.check(source) as typeof result;
    } catch (err) {
      result = { valid: false, error: err as Error };
    }
    if (!result.valid) {
      const e = result.error!;
      return { problems: [{ code: 'expr-type', message: firstLine(e), offset: e.node?.start ?? 0 }] };
    }
    const type = refineType(fromCelType(result.type ?? 'dyn', named), ast, scope);
    if (opts.bool && type.kind !== 'bool' && type.kind !== 'dyn') {
      return {
        type,
        problems: [{ code: 'expr-not-bool', message: `expected a bool condition, got ${result.type}`, offset: 0 }],
      };
    }
    return { type, problems: [] };
  }

  #envFor(scope: Scope) {
    const hit = this.#envs.get(scope);
    if (hit) return hit;
    const env = registerNumbers(new Environment({ ...ENV_OPTIONS, unlistedVariablesAreDyn: false }));
    const named = new Map<string, FieldType>();
    const seen = new Map<FieldType, string>();
    const celType = (t: FieldType): string => {
      switch (t.kind) {
        case 'list':
          return `list<${celType(t.items)}>`;
        case 'map':
          return `map<string, ${celType(t.values)}>`;
        case 'record': {
          const known = seen.get(t);
          if (known) return known;
          const name = `T${seen.size}_${t.name.replace(/[^A-Za-z0-9_]/g, '_')}`;
          seen.set(t, name);
          const fields: Record<string, string> = {};
          for (const [k, f] of Object.entries(t.fields)) fields[k] = celType(f);
          env.registerType(name, { fields } as never);
          named.set(name, t);
          return name;
        }
        case 'timestamp':
          return 'google.protobuf.Timestamp';
        case 'null':
          return 'dyn';
        default:
          // A nullable scalar can be null at run time: let the checker accept `x == null` on it.
          return t.nullable ? 'dyn' : t.kind;
      }
    };
    for (const [name, t] of Object.entries(scope)) {
      try {
        // A record that may be missing (the other side of a left join) is dyn: `x == null` must check.
        env.registerVariable(name, t.kind === 'record' && t.nullable ? 'dyn' : celType(t));
      } catch {
        try {
          env.registerVariable(name, 'dyn');
        } catch {
          // A name CEL keeps for itself (`type`, `int`...): the field flows on to sinks, expressions cannot name it.
        }
      }
    }
    const entry = { env, named };
    this.#envs.set(scope, entry);
    return entry;
  }
}

/** Every `matches()` pattern must be a literal the linear-time engine can run (see the flags at the top). */
function checkPatterns(node: unknown, problems: ExpressionProblem[]): void {
  if (Array.isArray(node)) {
    for (const c of node) checkPatterns(c, problems);
    return;
  }
  if (!node || typeof node !== 'object' || !('op' in node)) return;
  const n = node as AstNode;
  const args = n.args as unknown[];
  const pattern = n.op === 'rcall' && args[0] === 'matches' ? (args[2] as unknown[])?.[0] : undefined;
  if (pattern !== undefined) {
    const p = pattern as AstNode;
    if (p.op !== 'value' || typeof p.args !== 'string') {
      problems.push({
        code: 'expr-regex',
        message: 'matches() takes its pattern as a string literal',
        offset: p.start ?? n.start,
        hint: 'a pattern computed from the data could take exponential time; write it in the expression',
      });
    } else {
      const reason = linearPatternProblem(p.args);
      if (reason) problems.push({ code: 'expr-regex', ...reason, offset: p.start });
    }
  }
  if (Array.isArray(n.args)) for (const c of n.args) checkPatterns(c, problems);
}

/** Why a pattern cannot run in linear time (or at all), or undefined when it can. */
export function linearPatternProblem(pattern: string): { message: string; hint?: string } | undefined {
  try {
    new RegExp(pattern);
  } catch (err) {
    return { message: `invalid regular expression '${pattern}': ${firstLine(err as Error).replace(/^.*: /, '')}` };
  }
  try {
    new RegExp(pattern, 'l');
  } catch {
    return {
      message: `regular expression '${pattern}' cannot run in linear time`,
      hint: 'patterns run in linear time (as RE2 does): no lookaheads (?=…) (?!…), no backreferences \\1 \\k<name>, repeats up to {1000}',
    };
  }
  return undefined;
}

function firstLine(e: Error): string {
  return (e?.message ?? String(e)).split('\n')[0]!.trim();
}

/** Walks field selections (`event.data.customerId`) and reports the ones the scope does not have, with hints. */
function walkFields(
  node: unknown,
  scope: Scope,
  bound: Map<string, FieldType | undefined>,
  problems: ExpressionProblem[],
): FieldType | undefined {
  if (!node || typeof node !== 'object' || !('op' in node)) return undefined;
  const n = node as AstNode;
  switch (n.op) {
    case 'id': {
      const name = n.args as string;
      if (bound.has(name)) return bound.get(name);
      if (name in scope) return scope[name];
      if (name === 'cel') return undefined;
      problems.push({
        code: 'expr-unknown-field',
        message: `unknown variable '${name}'`,
        offset: n.start,
        hint: didYouMean(name, [...Object.keys(scope), ...bound.keys()]),
      });
      return undefined;
    }
    case '.':
    case '.?': {
      const [target, field] = n.args as [AstNode, string];
      const t = walkFields(target, scope, bound, problems);
      if (t?.kind !== 'record') return undefined;
      const f = t.fields[field];
      if (f) return f;
      if (n.op === '.?') return undefined;
      problems.push({
        code: 'expr-unknown-field',
        message: `${describeTarget(target)} has no field '${field}'`,
        offset: n.pos,
        hint: didYouMean(field, Object.keys(t.fields)),
      });
      return undefined;
    }
    case 'rcall': {
      const [name, receiver, args] = n.args as [string, AstNode, AstNode[]];
      const rt = walkFields(receiver, scope, bound, problems);
      if (MACROS_BINDING.has(name) && args.length >= 2 && (args[0] as AstNode)?.op === 'id') {
        const v = (args[0] as AstNode).args as string;
        const inner = new Map(bound);
        inner.set(v, rt?.kind === 'list' ? rt.items : rt?.kind === 'map' ? { kind: 'string' } : undefined);
        for (const a of args.slice(1)) walkFields(a, scope, inner, problems);
        return undefined;
      }
      if (name === 'bind' && (receiver as AstNode)?.op === 'id' && args.length === 3) {
        const v = (args[0] as AstNode).args as string;
        const inner = new Map(bound);
        inner.set(v, walkFields(args[1], scope, bound, problems));
        walkFields(args[2], scope, inner, problems);
        return undefined;
      }
      for (const a of args) walkFields(a, scope, bound, problems);
      return undefined;
    }
    case 'call': {
      const [name, args] = n.args as [string, AstNode[]];
      if (name === 'has' && args.length === 1 && args[0]?.op === '.') {
        // has(x.f) asks whether f is set: only the target must exist.
        walkFields((args[0].args as [AstNode])[0], scope, bound, problems);
        return undefined;
      }
      for (const a of args) walkFields(a, scope, bound, problems);
      return undefined;
    }
    case '[]': {
      const [target, index] = n.args as [AstNode, AstNode];
      const t = walkFields(target, scope, bound, problems);
      walkFields(index, scope, bound, problems);
      if (t?.kind === 'list') return t.items;
      if (t?.kind === 'map') return t.values;
      return undefined;
    }
    default: {
      if (Array.isArray(n.args)) for (const a of n.args) walkDeep(a, scope, bound, problems);
      return undefined;
    }
  }
}

function walkDeep(v: unknown, scope: Scope, bound: Map<string, FieldType | undefined>, p: ExpressionProblem[]) {
  if (Array.isArray(v)) for (const x of v) walkDeep(x, scope, bound, p);
  else if (v && typeof v === 'object' && 'op' in v) walkFields(v, scope, bound, p);
}

function describeTarget(n: AstNode): string {
  if (n.op === 'id') return `'${n.args as string}'`;
  if (n.op === '.' || n.op === '.?') {
    const parts: string[] = [];
    let cur: AstNode | undefined = n;
    while (cur && (cur.op === '.' || cur.op === '.?')) {
      const [t, f] = cur.args as [AstNode, string];
      parts.unshift(f);
      cur = t;
    }
    if (cur?.op === 'id') return `'${cur.args as string}.${parts.join('.')}'`;
  }
  return 'the value';
}
