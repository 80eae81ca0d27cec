// The measures of `aggregate`, each checked against truth computed here independently: exact measures, the
// HyperLogLog, Space-Saving and KLL sketches (bounds on seeded data, also after merging), the JSON state round
// trip, and through a topology: output types, located validation errors, end-to-end rows and a snapshot/restore.
import fc from 'fast-check';
import { checkFile } from '../../../pipelines/compile/compile.ts';
import {
  init,
  type MeasureFn,
  measureFromJson,
  measureToJson,
  merge,
  parseMeasure,
  result,
  step,
} from '../../../pipelines/steps/measures.ts';
import { TopologyTestDriver } from '../../../pipelines/testing/driver.ts';
import { formatDiagnostic } from '../../../pipelines/topology/diagnostics.ts';
import { topology, writeTopology } from './helpers.ts';

const fn = (src: string): MeasureFn => parseMeasure(src)!.fn;
/** The state after adding each value (as aggregate does: noArg only for `count()`). */
function fold(f: MeasureFn, values: unknown[], noArg = false): unknown {
  let s = init(f);
  for (const v of values) s = step(f, s, v, noArg);
  return s;
}

/** A seeded generator for the test data (a 32-bit LCG, top bits), independent of the code under test. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const nonNull = (xs: unknown[]) => xs.filter((x) => x !== null && x !== undefined);
const value = fc.oneof(fc.integer({ min: -20, max: 20 }), fc.constantFrom('a', 'b', 'c', 'd'), fc.constant(null));
const numbers = fc.array(fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.constant(null)), { maxLength: 60 });

describe('exact measures', () => {
  it('count, sum, min, max, avg, distinct match the truth, whole or merged from two parts', () => {
    fc.assert(
      fc.property(numbers, fc.nat(), (xs, cut) => {
        const vs = nonNull(xs) as number[];
        const truth: Record<string, unknown> = {
          'count()': xs.length,
          'count(x)': vs.length,
          'sum(x)': vs.reduce((a, b) => a + b, 0),
          'min(x)': vs.length ? Math.min(...vs) : null,
          'max(x)': vs.length ? Math.max(...vs) : null,
          'avg(x)': vs.length ? vs.reduce((a, b) => a + b, 0) / vs.length : null,
          'distinct(x)': new Set(vs).size,
        };
        const at = xs.length === 0 ? 0 : cut % (xs.length + 1);
        for (const [src, want] of Object.entries(truth)) {
          const f = fn(src);
          const noArg = src === 'count()';
          expect(result(f, fold(f, xs, noArg), false)).toBe(want);
          const merged = merge(f, fold(f, xs.slice(0, at), noArg), fold(f, xs.slice(at), noArg));
          expect(result(f, merged, false)).toBe(want);
        }
      }),
    );
  });

  it('min and max also order strings; distinct partials are the list of values', () => {
    expect(result(fn('min(x)'), fold(fn('min(x)'), ['b', 'a', null, 'c']), false)).toBe('a');
    expect(result(fn('max(x)'), fold(fn('max(x)'), ['b', 'a', null, 'c']), false)).toBe('c');
    expect(result(fn('distinct(x)'), fold(fn('distinct(x)'), ['x', 'y', 'x']), true)).toEqual(['x', 'y']);
  });
});

describe('parsing', () => {
  it.each([
    ['topK(x)', { kind: 'topK', k: 10 }, 'x'],
    ['topK(event.data.items[0].productId, 3)', { kind: 'topK', k: 3 }, 'event.data.items[0].productId'],
    ['topK(f(a, "x,y"), 25)', { kind: 'topK', k: 25 }, 'f(a, "x,y")'],
    ['quantile(latency, 0.99)', { kind: 'quantile', qs: [0.99] }, 'latency'],
    ['quantile(latency, .5)', { kind: 'quantile', qs: [0.5] }, 'latency'],
    ['quantiles(x, [0.5, 0.9,0.99])', { kind: 'quantiles', qs: [0.5, 0.9, 0.99] }, 'x'],
    ['approxDistinct(event.k)', { kind: 'approxDistinct' }, 'event.k'],
    ['distinct(a, b)', { kind: 'distinct' }, 'a, b'],
  ])('%s', (src, want, arg) => {
    const p = parseMeasure(src)!;
    expect(p.problem).toBeUndefined();
    expect(p.fn).toEqual(want);
    expect(p.arg.trim()).toBe(arg);
  });
  it.each([
    'topK(x, 0)',
    'topK(x, 1001)',
    'topK(x, 2.5)',
    'topK(x, k)',
    'quantile(x)',
    'quantile(x, 1)',
    'quantile(x, 0)',
    'quantile(x, -0.5)',
    'quantile(x, q)',
    'quantiles(x, [])',
    'quantiles(x, [0.5, 1.5])',
    'quantiles(x, 0.5)',
  ])('%s has a problem', (src) => {
    expect(parseMeasure(src)!.problem).toMatch(/must be|needs|expected/);
  });
});

describe('approxDistinct (HyperLogLog, p = 14)', () => {
  const f = fn('approxDistinct(x)');
  const SE = 1.04 / Math.sqrt(2 ** 14);

  it('is within 3 standard errors on 100k distinct values (strings, numbers), duplicates ignored', () => {
    const strings = Array.from({ length: 100_000 }, (_, i) => `customer-${i}`);
    const nums = Array.from({ length: 100_000 }, (_, i) => i * 7919 + 0.5);
    for (const xs of [strings, nums]) {
      const s = fold(f, [...xs, ...xs.slice(0, 50_000), null]);
      const est = result(f, s, false) as number;
      expect(Math.abs(est / 100_000 - 1)).toBeLessThan(3 * SE);
    }
  });

  it('is within 3 standard errors from 0 up, exact on tiny sets; 1 and "1" differ', () => {
    for (const n of [0, 1, 2, 10, 100, 1000, 5000, 20_000]) {
      const est = result(
        f,
        fold(
          f,
          Array.from({ length: n }, (_, i) => `v${i}`),
        ),
        false,
      ) as number;
      if (n <= 10) expect(est).toBe(n);
      else expect(Math.abs(est / n - 1)).toBeLessThan(3 * SE);
    }
    expect(result(f, fold(f, [1, '1', true, 'true', 1]), false)).toBe(4);
  });

  it('merges: two overlapping sets give their union, the same registers as one sketch of everything', () => {
    const a = Array.from({ length: 60_000 }, (_, i) => `u${i}`);
    const b = Array.from({ length: 60_000 }, (_, i) => `u${i + 40_000}`);
    const m = merge(f, fold(f, a), fold(f, b));
    expect(Math.abs((result(f, m, false) as number) / 100_000 - 1)).toBeLessThan(3 * SE);
    expect(measureToJson(f, m)).toEqual(measureToJson(f, fold(f, [...a, ...b])));
    // A sparse sketch (few values) into a dense one, and the other way round.
    const small = fold(f, ['x', 'y', 'u1']);
    expect(result(f, merge(f, small, fold(f, a)), false)).toBe(result(f, fold(f, [...a, 'x', 'y']), false));
    expect(result(f, merge(f, fold(f, a), small), false)).toBe(result(f, fold(f, [...a, 'x', 'y']), false));
  });
});

describe('topK (Space-Saving, 4k counters)', () => {
  /** The true counts, by value. */
  const counts = (xs: unknown[]) => {
    const c = new Map<unknown, number>();
    for (const x of nonNull(xs)) c.set(x, (c.get(x) ?? 0) + 1);
    return c;
  };

  function shuffle<T>(xs: T[], seed: number): T[] {
    const r = rng(seed);
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  }
  /** `tail` values of a long tail (value i about ∝ 1/(i+1)^s over `distinct` values), plus planted heavy ones. */
  function stream(heavy: number[], tail: number, distinct: number, s: number, seed: number): string[] {
    const w = Array.from({ length: distinct }, (_, i) => 1 / (i + 1) ** s);
    const total = w.reduce((a, b) => a + b, 0);
    const xs: string[] = [];
    heavy.forEach((c, i) => {
      for (let j = 0; j < c; j++) xs.push(`h${i}`);
    });
    w.forEach((x, i) => {
      for (let j = 0; j < Math.max(1, Math.round((x / total) * tail)); j++) xs.push(`t${i}`);
    });
    return shuffle(xs, seed);
  }

  /** Each count is an upper bound, too high by at most n/(4k); listed largest first. */
  function checkBounds(top: { value: unknown; count: number }[], xs: string[], k: number) {
    const c = counts(xs);
    for (const t of top) {
      expect(t.count).toBeGreaterThanOrEqual(c.get(t.value)!);
      expect(t.count).toBeLessThanOrEqual(c.get(t.value)! + xs.length / (4 * k));
    }
    expect(top.map((t) => t.count)).toEqual([...top.map((t) => t.count)].sort((a, b) => b - a));
  }
  /** The true top k when they stand out: k-th true count > (k+1)-th + n/(4k), which the sketch guarantees. */
  function checkHeavyHitters(top: { value: unknown; count: number }[], xs: string[], k: number) {
    const truth = [...counts(xs)].sort((a, b) => b[1] - a[1]);
    expect(truth[k - 1]![1]).toBeGreaterThan(truth[k]![1] + xs.length / (4 * k));
    expect(new Set(top.map((t) => t.value))).toEqual(new Set(truth.slice(0, k).map(([v]) => v)));
    checkBounds(top, xs, k);
  }
  // Ten heavy values (6000..15000) over a skewed tail of 100k occurrences of 20k values.
  const heavy = Array.from({ length: 10 }, (_, i) => 6000 + 1000 * i);

  it('finds the true heavy hitters of a skewed stream, counts within n/(4k)', () => {
    const xs = stream(heavy, 100_000, 20_000, 0.5, 7);
    const f = fn('topK(x, 10)');
    checkHeavyHitters(result(f, fold(f, xs), false) as { value: unknown; count: number }[], xs, 10);
  });

  it('and after merging two summaries of unequal parts', () => {
    const xs = stream(heavy, 100_000, 20_000, 0.5, 11);
    const f = fn('topK(x, 10)');
    const m = merge(f, fold(f, xs.slice(0, 70_000)), fold(f, xs.slice(70_000)));
    checkHeavyHitters(result(f, m, false) as { value: unknown; count: number }[], xs, 10);
  });

  it('on a Zipf stream without planted values: bounds hold and the dominant values lead', () => {
    const xs = stream([], 200_000, 20_000, 1.2, 3);
    const f = fn('topK(x, 10)');
    const top = result(f, fold(f, xs), false) as { value: unknown; count: number }[];
    checkBounds(top, xs, 10);
    expect(top.slice(0, 3).map((t) => t.value)).toEqual(['t0', 't1', 't2']);
  });

  it('counts are exact while there are at most 4k distinct values, else bounded; whole or merged', () => {
    fc.assert(
      fc.property(
        fc.array(value, { maxLength: 300, size: 'max' }),
        fc.nat(),
        fc.integer({ min: 1, max: 12 }),
        (xs, cut, k) => {
          const f = fn(`topK(x, ${k})`);
          const at = cut % (xs.length + 1);
          const truth = counts(xs);
          const n = nonNull(xs).length;
          const want = [...truth.values()].sort((a, b) => b - a).slice(0, k);
          for (const s of [fold(f, xs), merge(f, fold(f, xs.slice(0, at)), fold(f, xs.slice(at)))]) {
            const top = result(f, s, false) as { value: unknown; count: number }[];
            expect(top).toHaveLength(want.length);
            if (truth.size <= 4 * k) {
              for (const t of top) expect(t.count).toBe(truth.get(t.value));
              expect(top.map((t) => t.count)).toEqual(want);
            } else {
              for (const t of top) {
                expect(t.count).toBeGreaterThanOrEqual(truth.get(t.value) ?? 0);
                expect(t.count).toBeLessThanOrEqual((truth.get(t.value) ?? 0) + n / (4 * k));
              }
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('quantile (KLL, k = 200)', () => {
  const BOUND = 0.0165;
  /** How far q is from the rank interval [#(< v), #(<= v)] / n of v in the sorted data. */
  function rankError(sorted: number[], q: number, v: number): number {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    let le = lo;
    while (le < sorted.length && sorted[le] === v) le++;
    if (le === lo) return 1; // v is not one of the values
    const below = lo / sorted.length;
    const upTo = le / sorted.length;
    return q < below ? below - q : q > upTo ? q - upTo : 0;
  }
  const qs = Array.from({ length: 99 }, (_, i) => (i + 1) / 100).concat([0.001, 0.999]);

  it.each([1, 2, 3])(
    'rank error within 1.65% on 100k values (skewed, with ties), whole and merged (data seed %i)',
    (seed) => {
      const r = rng(seed);
      const xs = Array.from({ length: 100_000 }, () => Math.round(r() ** 3 * 10_000) / 10);
      const sorted = [...xs].sort((a, b) => a - b);
      const f = fn('quantiles(x, [0.5])');
      const whole = fold(f, xs);
      const merged = merge(f, fold(f, xs.slice(0, 30_000)), fold(f, xs.slice(30_000)));
      const ofThree = merge(
        f,
        merge(f, fold(f, xs.slice(0, 10_000)), fold(f, xs.slice(10_000, 60_000))),
        fold(f, xs.slice(60_000)),
      );
      for (const s of [whole, merged, ofThree]) {
        const got = result({ kind: 'quantiles', qs }, s, false) as number[];
        const worst = Math.max(...qs.map((q, i) => rankError(sorted, q, got[i]!)));
        expect(worst).toBeLessThanOrEqual(BOUND);
      }
    },
  );

  it('is the exact nearest-rank quantile up to 200 values (nulls and non-numbers skipped)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(null)), { maxLength: 200 }),
        fc.double({ min: 0.001, max: 0.999, noNaN: true }),
        (xs, q) => {
          const vs = (nonNull(xs) as number[]).sort((a, b) => a - b);
          const f = fn(`quantile(x, ${q})`);
          const want = vs.length === 0 ? null : vs[Math.max(1, Math.ceil(q * vs.length)) - 1];
          expect(result(f, fold(f, [...xs, 'abc', Number.POSITIVE_INFINITY]), false)).toBe(want);
        },
      ),
    );
  });

  it('quantiles gives one value per fraction, in order', () => {
    const f = fn('quantiles(x, [0.25, 0.5, 0.75])');
    expect(result(f, fold(f, [4, 1, 3, 2]), false)).toEqual([1, 2, 3]);
    expect(result(f, fold(f, [null]), false)).toBeNull();
  });
});

describe('JSON state', () => {
  const all = [
    'count()',
    'count(x)',
    'sum(x)',
    'min(x)',
    'max(x)',
    'avg(x)',
    'distinct(x)',
    'approxDistinct(x)',
    'topK(x, 3)',
    'quantile(x, 0.9)',
    'quantiles(x, [0.1, 0.5])',
  ];
  // Numbers for the numeric measures; mixed values for the others. Enough values to fill topK and KLL.
  const inputs = (src: string) =>
    /^(sum|avg|quantile)/.test(src)
      ? fc.array(fc.oneof(fc.integer({ min: -500, max: 500 }), fc.constant(null)), { maxLength: 700, size: 'max' })
      : fc.array(value, { maxLength: 700, size: 'max' });

  it.each(all)('%s: state → JSON text → state is exact, whole and after merging, and goes on the same', (src) => {
    const f = fn(src);
    const noArg = src === 'count()';
    fc.assert(
      fc.property(inputs(src), inputs(src), inputs(src), (a, b, more) => {
        for (const s of [fold(f, a, noArg), merge(f, fold(f, a, noArg), fold(f, b, noArg))]) {
          const json = measureToJson(f, s);
          const text = JSON.stringify(json);
          const back = measureFromJson(f, JSON.parse(text));
          expect(JSON.stringify(measureToJson(f, back))).toBe(text);
          expect(result(f, back, false)).toEqual(result(f, s, false));
          // The restored state behaves as the original: same state after more values (and a merge).
          let x = s;
          let y = back;
          for (const v of more) {
            x = step(f, x, v, noArg);
            y = step(f, y, v, noArg);
          }
          expect(JSON.stringify(measureToJson(f, y))).toBe(JSON.stringify(measureToJson(f, x)));
          const other = fold(f, b, noArg);
          expect(measureToJson(f, merge(f, y, other))).toEqual(measureToJson(f, merge(f, x, other)));
        }
      }),
      { numRuns: 40 },
    );
  });

  it('sketches stay compact: a dense HyperLogLog is base64 bytes, a 100k KLL about 600 numbers', () => {
    const h = measureToJson(
      'approxDistinct',
      fold(
        fn('approxDistinct(x)'),
        Array.from({ length: 50_000 }, (_, i) => i),
      ),
    );
    expect(JSON.stringify(h).length).toBeLessThan(23_000);
    const k = measureToJson(
      'quantile',
      fold(
        fn('quantile(x, 0.5)'),
        Array.from({ length: 100_000 }, (_, i) => i),
      ),
    ) as { levels: number[][] };
    expect(k.levels.flat().length).toBeLessThan(700);
  });
});

describe('through a topology', () => {
  // Block style: a plain YAML scalar may hold commas there (in a flow map `{ }` it would need quotes).
  const agg = (measures: string[], emit = 'onClose') =>
    topology({
      steps: [
        '    - id: s',
        '      aggregate:',
        '        window: { tumbling: 1m }',
        `        emit: ${emit}`,
        '        measures:',
        ...measures.map((m) => `          ${m}`),
      ].join('\n'),
    });

  it('gives each sketch its output type', () => {
    const r = checkFile(
      writeTopology(
        agg([
          'u: approxDistinct(event.data.customerId)',
          'top: topK(event.data.customerId, 3)',
          'p: quantile(event.data.totalAmount, 0.9)',
          'ps: quantiles(event.data.totalAmount, [0.5, 0.9])',
        ]),
      ),
      { env: {} },
    );
    expect(r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
    const out = r.checked!.steps[0]!.scopeOut;
    expect(out.u).toEqual({ kind: 'double', number: 'count' });
    expect(out.top).toEqual({
      kind: 'list',
      items: {
        kind: 'record',
        name: 'TopK',
        fields: { value: { kind: 'string', nullable: false }, count: { kind: 'double', number: 'count' } },
      },
    });
    expect(out.p).toEqual({ kind: 'double' });
    expect(out.ps).toMatchObject({ kind: 'list', items: { kind: 'double' } });
  });

  it.each([
    ['n: topK(event.data.customerId, 0)', 'measure-invalid', /k must be an integer/],
    ['n: quantile(event.data.totalAmount, 1.5)', 'measure-invalid', /q must be a number between 0 and 1/],
    ['n: quantile(event.data.totalAmount)', 'measure-invalid', /needs q/],
    ['n: quantiles(event.data.totalAmount, [0.5, 0])', 'measure-invalid', /list of 1 to 20 numbers/],
    ['n: quantile(event.data.customerId, 0.5)', 'measure-invalid', /needs a number, not string/],
    ['n: topK(, 3)', 'measure-invalid', /topK\(\) needs an expression/],
  ])('%s → %s, located at the measure', (m, code, message) => {
    const yaml = agg([m]);
    const { diagnostics } = checkFile(writeTopology(yaml), { env: {} });
    const d = diagnostics.find((x) => x.code === code);
    if (!d) throw new Error(`no ${code} in:\n${diagnostics.map(formatDiagnostic).join('\n')}`);
    expect(d.message).toMatch(message);
    // Line 17 holds the measure; the column is where its value starts.
    expect(d.line).toBe(17);
    expect(d.column).toBe(yaml.split('\n')[16]!.indexOf(m.slice(3)) + 1);
    expect(d.path).toMatch(/measures\.n$/);
  });

  it.each([
    ['approxDistinct(event.data.customerId)', /emit distinct\(x\) per batch/],
    ['topK(event.data.customerId, 3)', /emit: onClose/],
    ['quantile(event.data.totalAmount, 0.5)', /emit: onClose/],
    ['quantiles(event.data.totalAmount, [0.5])', /emit: onClose/],
  ])('%s is refused with emit: perBatch, with a hint', (m, hint) => {
    const { diagnostics } = checkFile(writeTopology(agg([`n: ${m}`], 'perBatch')), { env: {} });
    const d = diagnostics.find((x) => x.code === 'window-invalid');
    expect(d?.message).toMatch(/sketch, not mergeable/);
    expect(d?.hint).toMatch(hint);
    expect(d?.path).toMatch(/measures\.n$/);
  });

  const jsonAgg = (window: string) => `apiVersion: pipelines/v1
kind: Topology
metadata: { name: t }
spec:
  source: { topic: in, group: t, value: { format: json }, eventTime: event.t }
  steps:
    - id: a
      aggregate:
        window: { ${window} }
        groupBy: [event.k]
        measures:
          u: approxDistinct(event.u)
          top: topK(event.u, 2)
          p50: quantile(event.v, 0.5)
          ps: quantiles(event.v, [0.25, 0.75])
  sinks:
    - clickhouse: { table: out }
  errors: { deadLetter: dlq }
`;
  const ev = (t: number, u: string, v: number) => ({ value: { t, k: 'a', u, v } });

  it('emits the sketch results per window, merges them in sessions, and survives a snapshot', async () => {
    const d = await TopologyTestDriver.load(writeTopology(jsonAgg('session: 10s')), { env: {} });
    // Two sessions ([0s, 15s) and [20s, 31s)), then bridged by the last record (12s is within 10s of both).
    // One batch, so the watermark (21s) does not close the first session before the bridge arrives.
    d.pipe([
      ev(0, 'x', 1),
      ev(5_000, 'y', 2),
      ev(5_000, 'x', 3),
      ev(20_000, 'z', 4),
      ev(21_000, 'x', 5),
      ev(12_000, 'y', 6),
    ]);
    expect(d.output('clickhouse:out')).toEqual([]);
    const snap = JSON.parse(JSON.stringify(d.plan.snapshot()));
    const d2 = await TopologyTestDriver.load(writeTopology(jsonAgg('session: 10s')), { env: {} });
    d2.plan.restore(snap);
    for (const x of [d, d2]) {
      // At the next offset: the restored windows skip offsets they already hold (a replay).
      x.pipe([{ ...ev(25_000, 'x', 7), offset: 6 }]);
      x.flush();
      // Truth for x: 4, y: 2, z: 1; values 1..7 (nearest rank: ceil(q·7)).
      expect(x.output('clickhouse:out')).toEqual([
        {
          k: 'a',
          windowStart: 0,
          windowEnd: 35_000,
          u: 3,
          top: [
            { value: 'x', count: 4 },
            { value: 'y', count: 2 },
          ],
          p50: 4,
          ps: [2, 6],
        },
      ]);
    }
  });
});
