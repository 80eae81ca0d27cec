// Bad input never ends in a stack trace: random and mutated YAML, wrong types, deep nesting, huge files.
// The loader always answers with located diagnostics whose codes are in the catalogue.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${X} interpolation is part of the fuzzed input
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { checkFile } from '../../../pipelines/compile/compile.ts';
import { loadTopology } from '../../../pipelines/runtime/load.ts';
import { runTestFile } from '../../../pipelines/testing/cases.ts';
import { catalogue, type Diagnostic } from '../../../pipelines/topology/diagnostics.ts';
import { scratch, TOPOLOGIES } from './helpers.ts';

const dir = scratch();
let n = 0;
function check(text: string): Diagnostic[] {
  const file = join(dir, `f${n++ % 8}.yaml`);
  writeFileSync(file, text);
  const { diagnostics } = checkFile(file, { env: {} });
  for (const d of diagnostics) {
    expect(catalogue[d.code]).toBeDefined();
    expect(d.line).toBeGreaterThanOrEqual(1);
    expect(d.column).toBeGreaterThanOrEqual(1);
    expect(typeof d.message).toBe('string');
    expect(d.code).not.toBe('internal');
  }
  return diagnostics;
}

const examples = ['order-enrichment', 'order-analytics', 'order-status'].map((n) =>
  readFileSync(`${TOPOLOGIES}/${n}.yaml`, 'utf8'),
);

describe('fuzz', () => {
  it('random text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        check(s);
      }),
      { numRuns: 300 },
    );
  });

  it('random YAML-ish text from YAML tokens', () => {
    const token = fc.constantFrom(
      'apiVersion:',
      'kind:',
      'spec:',
      'steps:',
      '- ',
      '  ',
      '\n',
      '{',
      '}',
      '[',
      ']',
      ':',
      ',',
      '"',
      "'",
      '&a',
      '*a',
      '!!str',
      '? ',
      '|',
      '>',
      '#',
      'filter',
      'map',
      'event.data',
      '${X}',
      '${X:-1}',
      '1m',
      'null',
      '~',
      '0x1',
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 80 }), (parts) => {
        check(parts.join(''));
      }),
      { numRuns: 300 },
    );
  });

  it('mutated example files (a character deleted, inserted or replaced)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...examples),
        fc.nat(),
        fc.constantFrom('delete', 'insert', 'replace'),
        fc.string({ minLength: 1, maxLength: 3 }),
        (text, at, op, s) => {
          const i = at % text.length;
          const mutated =
            op === 'delete'
              ? text.slice(0, i) + text.slice(i + 1)
              : op === 'insert'
                ? text.slice(0, i) + s + text.slice(i)
                : text.slice(0, i) + s + text.slice(i + s.length);
          check(mutated);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('wrong types anywhere in a valid topology', async () => {
    const { parse } = await import('yaml');
    const doc = parse(examples[2]!) as Record<string, unknown>;
    const paths: (string | number)[][] = [];
    const walk = (v: unknown, p: (string | number)[]) => {
      paths.push(p);
      if (Array.isArray(v)) for (const [i, x] of v.entries()) walk(x, [...p, i]);
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
    };
    walk(doc, []);
    fc.assert(
      fc.property(
        fc.constantFrom(...paths.filter((p) => p.length > 0)),
        fc.constantFrom<unknown>(1, -1.5, true, null, 'x', [], {}, [1, 'a'], { a: { b: 1 } }),
        (path, value) => {
          const copy = structuredClone(doc);
          let cur = copy as Record<string | number, unknown>;
          for (const k of path.slice(0, -1)) cur = cur[k] as Record<string | number, unknown>;
          cur[path.at(-1)!] = value;
          check(stringify(copy));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('deep nesting', () => {
    for (const depth of [100, 1000, 10_000, 100_000]) {
      expect(check(`${'['.repeat(depth)}${']'.repeat(depth)}`).length).toBeGreaterThan(0);
      expect(
        check(
          `${'a:\n'.repeat(1)}${Array.from({ length: Math.min(depth, 2000) }, (_, i) => `${' '.repeat(i + 1)}k:`).join('\n')}`,
        ).length,
      ).toBeGreaterThan(0);
    }
    const deepExpr = examples[0]!.replace(
      "filter: event.eventType == 'OrderPlaced'",
      `filter: "${'('.repeat(5000)}true${')'.repeat(5000)}"`,
    );
    check(deepExpr);
  });

  it('huge files are refused with a located message', () => {
    const d = check(`# ${'x'.repeat(2 * 1024 * 1024)}\n`);
    expect(d.map((x) => x.code)).toEqual(['file-too-large']);
  });

  it('alias bombs', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
      'e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]',
    ].join('\n');
    expect(check(bomb).length).toBeGreaterThan(0);
  });

  it('a missing file, and the async loader and the test runner on bad input', async () => {
    expect(checkFile(join(dir, 'nope.yaml')).diagnostics[0]).toMatchObject({
      code: 'file-not-found',
      line: 1,
      column: 1,
    });
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'spec: [');
    const loaded = await loadTopology(file);
    expect(loaded.plan).toBeUndefined();
    expect(loaded.diagnostics[0]?.code).toBe('yaml-syntax');
    const tests = join(dir, 'bad.test.yaml');
    writeFileSync(tests, 'topology: ./nope.yaml\ncases: [{ name: x, input: [], expect: {} }]\n');
    const r = await runTestFile(tests);
    expect(r.diagnostics[0]?.code).toBe('file-not-found');
  });
});
