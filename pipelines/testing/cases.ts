// Declarative test cases kept beside the topologies (`<name>.test.yaml`): given tables and input events,
// expect what the sinks receive. Run by `pipelines test` and by jest, through the offline driver.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { readSource } from '../compile/compile.ts';
import { validate } from '../compile/issues.ts';
import { PipelinesError } from '../errors.ts';
import { loadTopology } from '../runtime/load.ts';
import type { Plan } from '../runtime/plan.ts';
import type { StateEntry } from '../steps/step.ts';
import type { Diagnostic } from '../topology/diagnostics.ts';
import { didYouMean, hasErrors } from '../topology/diagnostics.ts';
import { duration } from '../topology/durations.ts';
import { SourceFile } from '../topology/yaml.ts';
import { InputError, TopologyTestDriver } from './driver.ts';

const RecordInput = z.strictObject({
  value: z.unknown().describe('The event (JSON), checked against the source Avro schemas.'),
  key: z.unknown().optional().describe('Kafka record key.'),
  partition: z.number().int().min(0).optional().describe('Partition (default 0).'),
  source: z
    .string()
    .optional()
    .describe('A source under spec.sources, by name: the record comes from its topic (default: spec.source).'),
  timestamp: z.number().optional().describe('Kafka record timestamp (default: value.timestamp).'),
});
const Advance = z.strictObject({ advance: duration().describe('Move the wall clock (ends the batch).') });
const Upsert = z.strictObject({
  table: z.string().describe('A table of the topology (spec.tables).'),
  upsert: z.record(z.string(), z.unknown()).describe('A table row (ends the batch).'),
});
const Delete = z.strictObject({
  table: z.string().describe('A table of the topology (spec.tables).'),
  delete: z.union([z.string(), z.number()]).describe('A table key (ends the batch).'),
});
const Batch = z.strictObject({ batch: z.literal(true).describe('End the current batch here.') });

export const TestCaseSchema = z.strictObject({
  name: z.string().min(1).describe('What this case shows.'),
  tables: z
    .record(z.string(), z.array(z.record(z.string(), z.unknown())))
    .optional()
    .describe('Rows loaded into the tables before the input.'),
  now: z.number().optional().describe('Initial wall clock, epoch ms (default 0).'),
  input: z
    .array(z.union([RecordInput, Advance, Upsert, Delete, Batch]))
    .describe('Records (consecutive ones form one batch), wall-clock moves, table updates, batch ends.'),
  flush: z.boolean().default(true).describe('End of input after the last item: close every window.'),
  expect: z
    .strictObject({
      sinks: z
        .record(z.string(), z.array(z.unknown()))
        .optional()
        .describe('Per sink id, the rows it receives, in order; each expected row lists the fields it checks.'),
      deadLetters: z
        .array(
          z.strictObject({
            stepId: z.string().optional().describe('The step that rejected it (`decode` for undecodable bytes).'),
            errorClass: z.string().optional().describe('Its error class (e.g. `LateEvent`, `DecodeError`).'),
            message: z.string().optional().describe('A substring of its error message.'),
          }),
        )
        .optional()
        .describe('The dead letters, in order (message: a substring).'),
      state: z
        .record(
          z.string(),
          z.array(
            z.strictObject({
              key: z
                .unknown()
                .describe('Its key: a fold or dedupe key; for an aggregate, its group (several: a list).'),
              windowStart: z.number().optional().describe('For an aggregate: the start of the window, epoch ms.'),
              value: z
                .unknown()
                .optional()
                .describe(
                  'A fold: its state; a dedupe: when the key was seen (epoch ms); an aggregate: the row it would emit now; a saga: its instance.',
                ),
            }),
          ),
        )
        .optional()
        .describe(
          'Per stateful step id (fold, dedupe, aggregate, saga), every entry it holds when the input ends, in any ' +
            'order, each listing the fields it checks. Read before the end-of-input `flush` (which closes windows and forgets dedupe keys).',
        ),
      ordered: z.boolean().default(true).describe('Rows in this order (false: in any order).'),
    })
    .describe('What must come out.'),
});

export const TestFileSchema = z
  .strictObject({
    topology: z.string().describe('The topology file, relative to this file.'),
    cases: z.array(TestCaseSchema).min(1).describe('The cases, each run on a fresh plan.'),
  })
  .describe('Declarative test cases for a topology.');

export type TestCase = z.output<typeof TestCaseSchema>;

export interface CaseResult {
  name: string;
  passed: boolean;
  failures: string[];
  ms: number;
}

export interface FileResult {
  file: string;
  diagnostics: Diagnostic[];
  cases: CaseResult[];
}

/** Test files under a path: a `.test.yaml` file, or every one in a folder (recursively). */
export function findTestFiles(path: string): string[] {
  const abs = resolve(path);
  if (statSync(abs).isFile()) {
    if (/\.test\.ya?ml$/.test(abs)) return [abs];
    // A topology named instead of its tests: the test file beside it, as `pipelines test topologies/` finds it.
    const beside = [abs.replace(/\.ya?ml$/, '.test.yaml'), abs.replace(/\.ya?ml$/, '.test.yml')].find(existsSync);
    if (beside) return [beside];
    throw new PipelinesError(
      'TEST_FILE_MISSING',
      `${path} is not a test file, and there is no ${basename(abs).replace(/\.ya?ml$/, '.test.yaml')} beside it ` +
        '(test cases live in x.test.yaml next to x.yaml; see topologies/REFERENCE.md#test-cases)',
    );
  }
  const out: string[] = [];
  for (const name of readdirSync(abs).sort()) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(abs, name);
    if (statSync(p).isDirectory()) out.push(...findTestFiles(p));
    else if (/\.test\.ya?ml$/.test(name)) out.push(p);
  }
  return out;
}

/** Checks a test file's format (not its topology); the parsed file when it has no errors. */
export function checkTestFile(file: string): {
  file: string;
  diagnostics: Diagnostic[];
  spec?: z.output<typeof TestFileSchema>;
  source?: SourceFile;
} {
  const src = readSource(file);
  if (!(src instanceof SourceFile)) return { file, diagnostics: [src] };
  const diagnostics = [...src.diagnostics, ...(src.diagnostics.length ? [] : validate(TestFileSchema, src.value, src))];
  if (hasErrors(diagnostics)) return { file: src.file, diagnostics };
  return { file: src.file, diagnostics, spec: TestFileSchema.parse(src.value), source: src };
}

/** Where a failing expectation is written: `file:line:col` of a path in the test file. */
export type Locate = (path: ReadonlyArray<string | number>) => string;

export async function runTestFile(file: string): Promise<FileResult> {
  const checked = checkTestFile(file);
  const { diagnostics, spec } = checked;
  if (!spec) return { file: checked.file, diagnostics, cases: [] };
  const src = { file: checked.file };
  const topologyFile = resolve(dirname(file), spec.topology);
  const loaded = await loadTopology(topologyFile);
  if (!loaded.plan) return { file: src.file, diagnostics: [...diagnostics, ...loaded.diagnostics], cases: [] };
  const stateProblems = stateSteps(spec, loaded.plan, checked.source!);
  if (stateProblems.length > 0) return { file: src.file, diagnostics: [...diagnostics, ...stateProblems], cases: [] };
  const cases: CaseResult[] = [];
  for (const [i, c] of spec.cases.entries()) {
    const started = performance.now();
    // A fresh plan per case: no state leaks from one case to the next.
    const { plan } = await loadTopology(topologyFile);
    const locate: Locate = (path) => {
      const p = checked.source!.locate(['cases', i, ...path]);
      return `${checked.file}:${p.line}:${p.column}`;
    };
    const failures = runCase(new TopologyTestDriver(plan!, { now: c.now ?? 0 }), c, locate);
    cases.push({ name: c.name, passed: failures.length === 0, failures, ms: performance.now() - started });
  }
  return { file: src.file, diagnostics, cases };
}

/** The step ids of `expect.state` that name no step with state: located in the test file, before any case runs. */
function stateSteps(spec: z.output<typeof TestFileSchema>, plan: Plan, src: SourceFile): Diagnostic[] {
  const withState = Object.keys(plan.entries());
  return spec.cases.flatMap((c, i) =>
    Object.keys(c.expect.state ?? {})
      .filter((id) => !withState.includes(id))
      .map((id) => {
        const step = plan.steps.find((s) => s.id === id);
        const path = ['cases', i, 'expect', 'state', id];
        return src.diagnostic(
          'test-state-step',
          step ? `step '${id}' (${step.kind}) holds no state to expect` : `no step '${id}' in the topology`,
          path,
          didYouMean(id, withState) ?? 'no step of this topology holds state',
          src.locateKey(path),
        );
      }),
  );
}

export function runCase(driver: TopologyTestDriver, c: TestCase, locate?: Locate): string[] {
  const state: Record<string, StateEntry[]> = {};
  try {
    for (const [table, rows] of Object.entries(c.tables ?? {})) for (const row of rows) driver.table(table).upsert(row);
    let batch: Parameters<TopologyTestDriver['pipe']>[0] & unknown[] = [];
    let at: number[] = []; // each batched record's index in c.input
    const end = () => {
      try {
        if (batch.length > 0) driver.pipe(batch);
      } catch (err) {
        const where = err instanceof InputError && err.index !== undefined && locate?.(['input', at[err.index]!]);
        if (where) throw new InputError(`${where}: input ${at[err.index!]! + 1}`, err.problems);
        throw err;
      }
      batch = [];
      at = [];
    };
    for (const [i, item] of c.input.entries()) {
      if ('value' in item) {
        batch.push(item as never);
        at.push(i);
      } else {
        end();
        if ('advance' in item) driver.advanceWallClock(item.advance);
        else if ('upsert' in item) driver.table(item.table).upsert(item.upsert);
        else if ('delete' in item) driver.table(item.table).delete(item.delete);
      }
    }
    end();
    // What the input left behind: the flush would close every window and forget every dedupe key.
    for (const stepId of Object.keys(c.expect.state ?? {})) state[stepId] = driver.state(stepId);
    if (c.flush) driver.flush();
  } catch (err) {
    if (err instanceof PipelinesError) return [err.message];
    return [`the run failed: ${(err as Error).message}`];
  }
  const failures: string[] = [];
  for (const [sinkId, expected] of Object.entries(c.expect.sinks ?? {})) {
    const actual = driver.outputs()[sinkId];
    if (!actual) {
      failures.push(`no sink '${sinkId}' (sinks: ${Object.keys(driver.outputs()).join(', ')})`);
      continue;
    }
    failures.push(
      ...compareRows(sinkId, expected, actual, c.expect.ordered, (j) => locate?.(['expect', 'sinks', sinkId, j])),
    );
  }
  if (c.expect.deadLetters) {
    const actual = driver
      .deadLetters()
      .map((d) => ({ stepId: d.stepId, errorClass: d.errorClass, message: d.message }));
    failures.push(
      ...compareRows('dead letters', c.expect.deadLetters, actual, c.expect.ordered, (j) =>
        locate?.(['expect', 'deadLetters', j]),
      ),
    );
  }
  for (const [stepId, expected] of Object.entries(c.expect.state ?? {})) {
    failures.push(
      ...compareRows(`state of '${stepId}'`, expected, state[stepId]!, false, (j) =>
        locate?.(['expect', 'state', stepId, j]),
      ),
    );
  }
  return failures;
}

/**
 * Expected rows against actual ones. A failure shows what came out beside what was expected: the actual rows for a
 * count that differs, and for an expected row that nothing matches, the closest actual row and how it differs
 * (and, at the end, the actual rows that matched nothing). `where(j)` locates expected row j in the test file.
 */
function compareRows(
  what: string,
  expected: readonly unknown[],
  actual: readonly unknown[],
  ordered: boolean,
  where: (j: number) => string | undefined = () => undefined,
): string[] {
  const out: string[] = [];
  const at = (j: number) => (where(j) ? `${where(j)}: ` : '');
  const rows = (list: readonly unknown[]) => list.map((a) => `\n        ${short(a)}`).join('');
  if (expected.length !== actual.length) {
    out.push(
      `${at(0)}${what}: expected ${expected.length} row(s), got ${actual.length}` +
        `${expected.length ? `\n      expected:${rows(expected)}` : ''}` +
        `${actual.length ? `\n      got:${rows(actual)}` : ''}`,
    );
    return out;
  }
  if (ordered) {
    expected.forEach((e, i) => {
      const diff = mismatch(e, actual[i], '');
      if (diff) out.push(`${at(i)}${what} row ${i + 1}: ${diff}\n        got ${short(actual[i])}`);
    });
    return out;
  }
  const left = [...actual];
  expected.forEach((e, j) => {
    const i = left.findIndex((a) => mismatch(e, a, '') === undefined);
    if (i >= 0) {
      left.splice(i, 1);
      return;
    }
    const closest = closestRow(e, left);
    out.push(
      `${at(j)}${what}: no row matches ${short(e)}` +
        (closest ? `\n        closest: ${short(closest.row)}\n        differs: ${closest.differs.join('; ')}` : ''),
    );
  });
  if (out.length > 0 && left.length > 0) out.push(`${what}: rows that matched no expected row:${rows(left)}`);
  return out;
}

/** The actual row with the fewest fields differing from `expected`, and those differences. */
function closestRow(expected: unknown, candidates: readonly unknown[]) {
  let best: { row: unknown; differs: string[] } | undefined;
  for (const row of candidates) {
    const differs = differences(expected, row, '');
    if (!best || differs.length < best.differs.length) best = { row, differs };
  }
  return best;
}

/** Every field of `expected` that `actual` does not match, nested objects field by field. */
function differences(expected: unknown, actual: unknown, at: string): string[] {
  const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
  if (actual === MISSING) return [`${at}: missing`];
  if (!isObject(expected) || !isObject(actual)) {
    const d = mismatch(expected, actual, at);
    return d ? [d] : [];
  }
  return Object.entries(expected).flatMap(([k, v]) =>
    k === 'message'
      ? [mismatch({ [k]: v }, actual, at)].filter((d): d is string => d !== undefined)
      : differences(v, k in actual ? actual[k] : MISSING, at ? `${at}.${k}` : k),
  );
}

const MISSING = Symbol('missing');

/** Undefined when `actual` has every field of `expected` with an equal value (numbers within 1e-9). */
function mismatch(expected: unknown, actual: unknown, at: string): string | undefined {
  if (typeof expected === 'number' && typeof actual === 'number') {
    return Math.abs(expected - actual) <= 1e-9 * Math.max(1, Math.abs(expected))
      ? undefined
      : `${at || 'value'}: expected ${expected}, got ${actual}`;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length)
      return `${at || 'value'}: expected ${short(expected)}, got ${short(actual)}`;
    for (let i = 0; i < expected.length; i++) {
      const d = mismatch(expected[i], actual[i], `${at}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (expected && typeof expected === 'object') {
    if (!actual || typeof actual !== 'object')
      return `${at || 'value'}: expected ${short(expected)}, got ${short(actual)}`;
    for (const [k, v] of Object.entries(expected)) {
      const path = at ? `${at}.${k}` : k;
      if (!(k in actual)) return `${path}: missing`;
      if (k === 'message' && typeof v === 'string' && typeof (actual as Record<string, unknown>)[k] === 'string') {
        if (!(actual as Record<string, string>)[k]!.includes(v)) return `${path}: expected to contain '${v}'`;
        continue;
      }
      const d = mismatch(v, (actual as Record<string, unknown>)[k], path);
      if (d) return d;
    }
    return undefined;
  }
  return Object.is(expected, actual)
    ? undefined
    : `${at || 'value'}: expected ${short(expected)}, got ${short(actual)}`;
}

function short(v: unknown): string {
  const s = JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? Number(x) : x));
  return s && s.length > 200 ? `${s.slice(0, 200)}…` : String(s);
}
