// Step kinds through the same spec → factory path as production (a topology file, loaded and compiled),
// driven by the offline driver; and every example in every spec is a valid config.
import { readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { decodeValue, encodeValue } from '../../../pipelines/codec/decoder.ts';
import { sinks, steps } from '../../../pipelines/compile/kinds.ts';
import { loadTopology } from '../../../pipelines/runtime/load.ts';
import { TopologyTestDriver } from '../../../pipelines/testing/driver.ts';
import { jsonTopology, writeTopology } from './helpers.ts';

const driver = (stepsYaml: string, extra = '') =>
  TopologyTestDriver.load(writeTopology(jsonTopology(stepsYaml, extra)), { env: {} });
const ev = (t: number, fields: Record<string, unknown> = {}) => ({ value: { t, ...fields } });

describe('specs', () => {
  it('compile/kinds.ts lists every step file (or folder), once', () => {
    const files = readdirSync(resolve(__dirname, '../../../pipelines/steps'), { withFileTypes: true })
      .filter((f) => f.isDirectory() || (f.name.endsWith('.ts') && !['step.ts', 'measures.ts'].includes(f.name)))
      .map((f) => f.name.replace(/\.ts$/, ''));
    expect(steps.map((s) => s.kind).sort()).toEqual(files.sort());
  });
  it.each(steps.flatMap((s) => s.examples.map((e, i) => [s.kind, i, s, e] as const)))(
    'step %s example %i is a valid config',
    (_k, _i, s, e) => {
      expect(s.config.safeParse(e).error?.issues ?? []).toEqual([]);
    },
  );
  it('compile/kinds.ts lists every sink folder, once', () => {
    const folders = readdirSync(resolve(__dirname, '../../../pipelines/sinks'), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
    expect(sinks.map((s) => s.kind).sort()).toEqual(folders.sort());
  });
  it.each(sinks.flatMap((s) => s.examples.map((e, i) => [s.kind, i, s, e] as const)))(
    'sink %s example %i is a valid config',
    (_k, _i, s, e) => {
      expect(s.config.safeParse(e).error?.issues ?? []).toEqual([]);
    },
  );
  it('every spec has a summary, a description and described fields', () => {
    for (const s of [...steps, ...sinks]) {
      expect(s.summary.length).toBeGreaterThan(10);
      expect(s.description.length).toBeGreaterThan(30);
    }
  });
});

describe('filter and map', () => {
  it('keeps true, projects fields', async () => {
    const d = await driver('    - filter: event.n > 1\n    - map: { n: event.n, twice: event.n * 2, tag: "\'x\'" }');
    d.pipe([ev(1, { n: 1 }), ev(2, { n: 2 }), ev(3, { n: 3 })]);
    expect(d.output('clickhouse:out')).toEqual([
      { n: 2, twice: 4, tag: 'x' },
      { n: 3, twice: 6, tag: 'x' },
    ]);
  });
});

describe('explode', () => {
  const steps = `    - explode:
        list: event.items
        index: line
        fields: { order: event.id, line: line, sku: item.sku, total: item.qty * item.price }`;
  it('one record per element, in order, with the parent record and the position in scope', async () => {
    const d = await driver(steps);
    d.pipe([
      ev(1, {
        id: 'A',
        items: [
          { sku: 'x', qty: 2, price: 1.5 },
          { sku: 'y', qty: 1, price: 4 },
        ],
      }),
      ev(2, { id: 'B', items: [] }),
      ev(3, { id: 'C', items: [{ sku: 'z', qty: 3, price: 2 }] }),
    ]);
    expect(d.output('clickhouse:out')).toEqual([
      { order: 'A', line: 0, sku: 'x', total: 3 },
      { order: 'A', line: 1, sku: 'y', total: 4 },
      { order: 'C', line: 0, sku: 'z', total: 6 },
    ]);
  });
  it('a value that is not a list goes to the dead letters, and the run goes on', async () => {
    const d = await driver(steps);
    d.pipe([ev(1, { id: 'A', items: 'oops' }), ev(2, { id: 'B', items: [{ sku: 'y', qty: 1, price: 1 }] })]);
    expect(d.output('clickhouse:out')).toEqual([{ order: 'B', line: 0, sku: 'y', total: 1 }]);
    expect(d.deadLetters()).toHaveLength(1);
  });
});

describe('names CEL keeps for itself', () => {
  it('a field named `type` flows to the sinks (expressions cannot name it)', async () => {
    const d = await driver('    - map: { type: event.k, n: event.n }\n    - filter: n > 1');
    d.pipe([ev(1, { k: 'a', n: 1 }), ev(2, { k: 'b', n: 2 })]);
    expect(d.output('clickhouse:out')).toEqual([{ type: 'b', n: 2 }]);
  });
});

describe('aggregate', () => {
  it('tumbling windows close on the watermark, with every measure', async () => {
    const d = await driver(
      '    - id: a\n      aggregate: { window: { tumbling: 10s }, groupBy: [event.k], measures: { n: count(), s: sum(event.v), lo: min(event.v), hi: max(event.v), mean: avg(event.v), u: distinct(event.u), nn: count(event.maybe) } }',
    );
    d.pipe([
      ev(1000, { k: 'a', v: 1, u: 'x', maybe: null }),
      ev(2000, { k: 'a', v: 3, u: 'x', maybe: 1 }),
      ev(3000, { k: 'b', v: 5, u: 'y', maybe: 2 }),
    ]);
    expect(d.output('clickhouse:out')).toEqual([]);
    d.pipe([ev(10_000, { k: 'a', v: 7, u: 'z', maybe: 3 })]);
    expect(d.output('clickhouse:out')).toEqual([
      { k: 'a', windowStart: 0, windowEnd: 10_000, n: 2, s: 4, lo: 1, hi: 3, mean: 2, u: 1, nn: 1 },
      { k: 'b', windowStart: 0, windowEnd: 10_000, n: 1, s: 5, lo: 5, hi: 5, mean: 5, u: 1, nn: 1 },
    ]);
    d.flush();
    expect(d.output('clickhouse:out')).toHaveLength(3);
  });

  it('hopping windows: each record in size/every windows', async () => {
    const d = await driver(
      '    - id: a\n      aggregate: { window: { hopping: 30s, every: 10s }, measures: { n: count() } }',
    );
    d.pipe([ev(25_000)]);
    d.flush();
    expect(d.output('clickhouse:out').map((r) => (r as { windowStart: number }).windowStart)).toEqual([
      0, 10_000, 20_000,
    ]);
  });

  it('session windows merge records closer than the gap', async () => {
    const d = await driver(
      '    - id: a\n      aggregate: { window: { session: 10s }, groupBy: [event.k], measures: { n: count() } }',
    );
    d.pipe([ev(0, { k: 'a' }), ev(25_000, { k: 'a' }), ev(5_000, { k: 'a' }), ev(12_000, { k: 'a' })]);
    d.flush();
    expect(d.output('clickhouse:out')).toEqual([
      { k: 'a', windowStart: 0, windowEnd: 22_000, n: 3 },
      { k: 'a', windowStart: 25_000, windowEnd: 35_000, n: 1 },
    ]);
  });

  it('a record split by an earlier step counts once per item, and again only if replayed', async () => {
    const file = writeTopology(
      jsonTopology(
        '    - module: { path: ./modules/split.ts, export: split, output: { t: double, i: double } }\n' +
          '    - id: a\n      aggregate: { window: { tumbling: 10s }, measures: { n: count() } }',
      ),
    );
    writeFileSync(
      join(dirname(file), 'modules', 'split.ts'),
      'export const split = (v) => [0, 1, 2].map((i) => ({ t: v.event.t, i }));\n',
    );
    const d = await TopologyTestDriver.load(file, { env: {} });
    d.plan.trackChanges();
    d.pipe([
      { value: { t: 1000 }, offset: 0 },
      { value: { t: 2000 }, offset: 1 },
    ]);
    // Through the changelog's encoding, as a restart reads it back.
    const state = d.plan.drainChanges().map(([k, v]) => [k, decodeValue(encodeValue(v))] as [string, unknown]);
    d.pipe([{ value: { t: 3000 }, offset: 2 }]);
    const again = await TopologyTestDriver.load(file, { env: {} });
    again.plan.loadState(state);
    // After a restart from the state of the first batch: offset 1 is replayed (skipped), offset 2 is new.
    again.pipe([
      { value: { t: 2000 }, offset: 1 },
      { value: { t: 3000 }, offset: 2 },
    ]);
    d.flush();
    again.flush();
    expect(d.output('clickhouse:out')).toEqual([{ windowStart: 0, windowEnd: 10_000, n: 9 }]);
    expect(again.output('clickhouse:out')).toEqual([{ windowStart: 0, windowEnd: 10_000, n: 9 }]);
  });

  it('perBatch keeps no window state between batches: its changelog carries only the watermark', async () => {
    const d = await driver(
      '    - id: a\n      aggregate: { window: { tumbling: 1m }, groupBy: [event.k], measures: { n: count() }, emit: perBatch }',
    );
    d.plan.trackChanges();
    d.pipe([ev(1, { k: 'a' }), ev(70_000, { k: 'b' })]);
    expect(d.plan.drainChanges().map(([k]) => k)).toEqual(['a|@watermark']);
    expect(d.output('clickhouse:out')).toHaveLength(2);
  });

  it('onUpdate emits the running value of each window a batch changed, open or not', async () => {
    const d = await driver(
      '    - id: a\n      aggregate: { window: { tumbling: 10s, allowedLateness: 1m }, measures: { n: count() }, emit: onUpdate }',
    );
    d.pipe([ev(1000), ev(2000)]);
    d.pipe([ev(3000), ev(12_000)]);
    d.pipe([ev(4000)]); // late but within the allowed lateness: window 0 again
    expect(d.output('clickhouse:out')).toEqual([
      { windowStart: 0, windowEnd: 10_000, n: 2 },
      { windowStart: 0, windowEnd: 10_000, n: 3 },
      { windowStart: 10_000, windowEnd: 20_000, n: 1 },
      { windowStart: 0, windowEnd: 10_000, n: 4 },
    ]);
  });

  it('perBatch emits mergeable partials, distinct as the list of values', async () => {
    const d = await driver(
      '    - id: a\n      aggregate: { window: { tumbling: 1m }, measures: { n: count(), u: distinct(event.u) }, emit: perBatch }',
    );
    d.pipe([ev(1, { u: 'x' }), ev(2, { u: 'y' }), ev(3, { u: 'x' })]);
    d.pipe([ev(4, { u: 'z' })]);
    expect(d.output('clickhouse:out')).toEqual([
      { windowStart: 0, windowEnd: 60_000, n: 3, u: ['x', 'y'] },
      { windowStart: 0, windowEnd: 60_000, n: 1, u: ['z'] },
    ]);
  });

  it('watermark is the minimum over partitions, minus maxOutOfOrderness', async () => {
    const d = await TopologyTestDriver.load(
      writeTopology(
        jsonTopology('    - id: a\n      aggregate: { window: { tumbling: 10s }, measures: { n: count() } }').replace(
          'eventTime: event.t',
          'eventTime: event.t, maxOutOfOrderness: 2s',
        ),
      ),
      { env: {} },
    );
    d.pipe([
      { partition: 0, value: { t: 15_000 } },
      { partition: 1, value: { t: 11_000 } },
    ]);
    expect(d.watermark).toBe(9_000);
    expect(d.output('clickhouse:out')).toEqual([]);
    d.pipe([{ partition: 1, value: { t: 13_000 } }]);
    expect(d.watermark).toBe(11_000);
    expect(d.output('clickhouse:out')).toEqual([]);
    d.flush();
    expect(d.output('clickhouse:out')).toEqual([{ windowStart: 10_000, windowEnd: 20_000, n: 3 }]);
  });

  it('late records go to the dead letters, or are dropped', async () => {
    for (const onLate of ['deadLetter', 'drop']) {
      const d = await driver(
        `    - id: a\n      aggregate: { window: { tumbling: 10s }, measures: { n: count() }, onLate: ${onLate} }`,
      );
      d.pipe([ev(100_000)]);
      d.pipe([ev(1_000)]);
      expect(d.deadLetters().map((x) => x.errorClass)).toEqual(onLate === 'drop' ? [] : ['LateEvent']);
    }
  });
});

describe('dedupe', () => {
  it('drops a key seen within the horizon, forgets it after', async () => {
    const d = await driver('    - id: d\n      dedupe: { key: event.id, horizon: 10s }');
    d.pipe([ev(1000, { id: 'a' }), ev(2000, { id: 'a' }), ev(3000, { id: 'b' })]);
    expect(d.output('clickhouse:out')).toHaveLength(2);
    d.pipe([ev(20_000, { id: 'c' })]);
    expect(d.state('d').map((e) => e.key)).toEqual(['c']);
    d.pipe([ev(21_000, { id: 'a' })]);
    expect(d.output('clickhouse:out')).toHaveLength(4);
  });
});

describe('fold', () => {
  const folding = `    - id: f
      fold:
        key: event.id
        by: event.type
        initial: { n: '0' }
        on:
          add: { n: state.n + event.v, id: event.id }
          reset: { n: '0', id: event.id }`;
  it('keeps a state per key, one handler per type, skips unknown types', async () => {
    const d = await driver(folding);
    d.pipe([
      ev(1, { id: 'a', type: 'add', v: 2 }),
      ev(2, { id: 'b', type: 'add', v: 1 }),
      ev(3, { id: 'a', type: 'add', v: 3 }),
      ev(4, { id: 'a', type: 'other' }),
      ev(5, { id: 'a', type: 'reset' }),
    ]);
    expect(d.output('clickhouse:out')).toEqual([
      { n: 2, id: 'a' },
      { n: 1, id: 'b' },
      { n: 5, id: 'a' },
      { n: 0, id: 'a' },
    ]);
  });
  it('trigger: each emitted record says which handler made it; the state does not keep it', async () => {
    const d = await driver(`${folding}\n        trigger: by\n    - filter: by == 'reset' || n > 2`);
    d.pipe([
      ev(1, { id: 'a', type: 'add', v: 2 }),
      ev(2, { id: 'a', type: 'add', v: 3 }),
      ev(3, { id: 'a', type: 'reset' }),
    ]);
    expect(d.output('clickhouse:out')).toEqual([
      { n: 5, id: 'a', by: 'add' },
      { n: 0, id: 'a', by: 'reset' },
    ]);
    expect(Object.keys(d.state('f').find((e) => e.key === 'a')!.value as object)).toEqual(['n', 'id']);
  });
  it('reduce: a TypeScript function folds instead of handlers (null leaves the state unchanged)', async () => {
    const file = writeTopology(
      jsonTopology(
        '    - id: f\n      fold: { key: event.c, reduce: { path: ./modules/totals.ts, export: totals, output: { n: double, spent: double } } }\n    - map: { n: n, spent: spent }',
      ),
    );
    writeFileSync(
      join(dirname(file), 'modules', 'totals.ts'),
      'export const totals = (s, v) => (v.event.skip ? null : { n: (s?.n ?? 0) + 1, spent: (s?.spent ?? 0) + v.event.v });\n',
    );
    const d = await TopologyTestDriver.load(file, { env: {} });
    d.pipe([
      ev(1, { c: 'a', v: 2 }),
      ev(2, { c: 'b', v: 5 }),
      ev(3, { c: 'a', v: 3 }),
      ev(4, { c: 'a', v: 9, skip: true }),
    ]);
    expect(d.output('clickhouse:out')).toEqual([
      { n: 1, spent: 2 },
      { n: 1, spent: 5 },
      { n: 2, spent: 5 },
    ]);
    expect(d.state('f')).toEqual([
      { key: 'a', value: { n: 2, spent: 5 } },
      { key: 'b', value: { n: 1, spent: 5 } },
    ]);
  });

  it('a fold has either handlers or a reduce function', async () => {
    const r = await loadTopology(
      writeTopology(
        jsonTopology("    - fold: { key: event.c, on: { x: { n: '1' } }, reduce: { path: ./m.ts, output: {} } }"),
      ),
      { env: {} },
    );
    expect(r.diagnostics.map((x) => x.message).join('\n')).toMatch(/either `on`.*or `reduce`/);
  });

  it('state survives a snapshot and a restore into a new plan', async () => {
    const a = await driver(folding);
    a.pipe([ev(1, { id: 'a', type: 'add', v: 2 })]);
    const snap = a.plan.snapshot();
    const b = await driver(folding);
    b.plan.restore(JSON.parse(JSON.stringify(snap)));
    b.pipe([ev(2, { id: 'a', type: 'add', v: 5 })]);
    expect(b.output('clickhouse:out')).toEqual([{ n: 7, id: 'a' }]);
  });
});

describe('enrich', () => {
  const tables = '  tables:\n    people: { topic: people, key: id }\n';
  const withTables = (steps: string) =>
    TopologyTestDriver.load(writeTopology(jsonTopology(steps).replace('  steps:\n', `${tables}  steps:\n`)), {
      env: {},
    });
  it.each([
    ['keep', [{ who: null }], []],
    ['drop', [], []],
    ['deadLetter', [], ['MissingTableRow']],
  ])('onMissing: %s', async (onMissing, rows, dls) => {
    const d = await withTables(
      `    - id: e\n      enrich: { table: people, key: event.p, as: who, onMissing: ${onMissing} }\n    - map: { who: who }`,
    );
    d.pipe([ev(1, { p: 'nobody' })]);
    expect(d.output('clickhouse:out')).toEqual(rows);
    expect(d.deadLetters().map((x) => x.errorClass)).toEqual(dls);
  });
  it('wait holds the record (and its offset) until the row arrives; deletes are tombstones', async () => {
    const d = await withTables(
      '    - id: e\n      enrich: { table: people, key: event.p, as: who, onMissing: wait }\n    - map: { name: who.name }',
    );
    d.pipe([ev(1, { p: 'x' })]);
    expect(d.plan.heldOffsets()).toEqual({ 'in/0': 0 });
    d.table('people').upsert({ id: 'x', name: 'Xavier' });
    d.advanceWallClock('1s');
    expect(d.output('clickhouse:out')).toEqual([{ name: 'Xavier' }]);
    expect(d.plan.heldOffsets()).toEqual({});
    d.table('people').delete('x');
    d.pipe([ev(2, { p: 'x' })]);
    expect(d.output('clickhouse:out')).toHaveLength(1);
  });
});

describe('module', () => {
  it('runs the exported function, which can split a record', async () => {
    const dir = writeTopology('', 'unused.yaml').replace(/unused\.yaml$/, '');
    const file = writeTopology(
      jsonTopology(
        '    - module: { path: ./modules/explode-items.ts, export: explodeItems, output: { productId: string, quantity: int } }\n    - map: { productId: productId, quantity: quantity }',
      ),
      'm.yaml',
      dir,
    );
    const d = await TopologyTestDriver.load(file, { env: {} });
    d.pipe([
      ev(1, {
        timestamp: 1,
        data: {
          orderId: 'o',
          customerId: 'c',
          items: [
            { productId: 'p1', quantity: 1, price: 1 },
            { productId: 'p2', quantity: 2, price: 1 },
          ],
        },
      }),
    ]);
    expect(d.output('clickhouse:out')).toEqual([
      { productId: 'p1', quantity: 1 },
      { productId: 'p2', quantity: 2 },
    ]);
  });
});
