// Properties of the stateful steps (fast-check), through the offline driver on the very same plan:
// shuffled input within the allowed lateness aggregates as sorted input does, windows add up to the totals,
// and a run cut at any batch, its state carried over through changelog entries into a fresh plan, ends as the
// uninterrupted run (the fold replays to identical state, windows neither lose nor double a record).
import fc from 'fast-check';
import { decodeValue, encodeValue } from '../../../pipelines/codec/decoder.ts';
import { TopologyTestDriver } from '../../../pipelines/testing/driver.ts';
import { jsonTopology, writeTopology } from './helpers.ts';

const load = (steps: string) => TopologyTestDriver.load(writeTopology(jsonTopology(steps)), { env: {} });

const WINDOWS = `    - id: w
      aggregate:
        window: { tumbling: 10s, allowedLateness: 1h }
        groupBy: [event.k]
        measures: { n: count(), s: sum(event.v), lo: min(event.v), hi: max(event.v), u: distinct(event.u) }`;

const FOLD = `    - id: d
      dedupe: { key: event.id, horizon: 1h }
    - id: f
      fold:
        key: event.k
        initial: { n: '0', total: '0' }
        by: "'any'"
        on:
          any: { k: event.k, n: state.n + 1, total: state.total + event.v, last: event.t }`;

interface Ev {
  t: number;
  k: string;
  v: number;
  u: string;
  id: string;
}

const events = fc
  .array(
    fc.record({
      t: fc.integer({ min: 0, max: 120_000 }),
      k: fc.constantFrom('a', 'b', 'c'),
      v: fc.integer({ min: -50, max: 50 }),
      u: fc.constantFrom('x', 'y', 'z'),
    }),
    { minLength: 1, maxLength: 60 },
  )
  .map((list) => list.map((e, i): Ev => ({ ...e, id: `e${i}` })));

/** Cuts a list into batches at the given (sorted, deduplicated) points. */
function batches<T>(list: T[], cuts: number[]): T[][] {
  const points = [...new Set(cuts.map((c) => c % (list.length + 1)))].sort((a, b) => a - b);
  const out: T[][] = [];
  let from = 0;
  for (const p of [...points, list.length]) {
    if (p > from) out.push(list.slice(from, p));
    from = Math.max(from, p);
  }
  return out;
}

type Row = Record<string, unknown>;

/** The last row emitted per window and group: what a ReplacingMergeTree or a compacted topic ends with. */
function finals(rows: unknown[]): Map<string, Row> {
  const m = new Map<string, Row>();
  for (const r of rows as Row[]) m.set(`${r.windowStart}|${r.k}`, r);
  return m;
}

async function run(steps: string, parts: Ev[][]): Promise<TopologyTestDriver> {
  const d = await load(steps);
  for (const b of parts) d.pipeValues(b);
  d.flush();
  return d;
}

/** Runs the first `cut` batches, carries the state to a new plan through changelog entries, runs the rest. */
async function runWithRestart(
  steps: string,
  parts: Ev[][],
  cut: number,
  replayFrom = cut,
): Promise<{ rows: unknown[]; d: TopologyTestDriver }> {
  const log = new Map<string, Buffer | null>();
  const first = await load(steps);
  first.plan.trackChanges();
  for (const b of parts.slice(0, cut)) {
    first.pipeValues(b);
    // What compaction keeps: the last value per key (null: deleted).
    for (const [k, v] of first.plan.drainChanges()) log.set(k, v === null ? null : encodeValue(v));
  }
  const second = await load(steps);
  second.plan.trackChanges();
  second.plan.loadState([...log].filter(([, v]) => v !== null).map(([k, v]) => [k, decodeValue(v!)]));
  for (const p of [0]) {
    second.plan.restorePartitionClock(p, first.plan.partitionClock(p));
  }
  // The new plan reads on from where the first one stopped (offsets go on; the restored state knows them).
  let offset = parts.slice(0, replayFrom).reduce((n, b) => n + b.length, 0);
  for (const b of parts.slice(replayFrom)) second.pipe(b.map((value) => ({ value, offset: offset++ })));
  second.flush();
  return { rows: [...first.output('clickhouse:out'), ...second.output('clickhouse:out')], d: second };
}

describe('aggregate properties', () => {
  it('shuffled input within the allowed lateness ends with the same windows as sorted input', async () => {
    await fc.assert(
      fc.asyncProperty(
        events,
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        async (list, cutsA, cutsB) => {
          const sorted = [...list].sort((a, b) => a.t - b.t);
          const a = await run(WINDOWS, batches(sorted, cutsA));
          const b = await run(WINDOWS, batches(list, cutsB));
          expect(b.deadLetters()).toEqual([]);
          expect(finals(b.output('clickhouse:out'))).toEqual(finals(a.output('clickhouse:out')));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('windows add up to the totals, computed independently', async () => {
    await fc.assert(
      fc.asyncProperty(events, fc.array(fc.nat(), { maxLength: 8 }), async (list, cuts) => {
        const d = await run(WINDOWS, batches(list, cuts));
        const rows = [...finals(d.output('clickhouse:out')).values()];
        expect(rows.reduce((n, r) => n + (r.n as number), 0)).toBe(list.length);
        expect(rows.reduce((n, r) => n + (r.s as number), 0)).toBe(list.reduce((n, e) => n + e.v, 0));
        for (const r of rows) {
          const mine = list.filter((e) => e.k === r.k && Math.floor(e.t / 10_000) * 10_000 === r.windowStart);
          expect(r.lo).toBe(Math.min(...mine.map((e) => e.v)));
          expect(r.hi).toBe(Math.max(...mine.map((e) => e.v)));
          expect(r.u).toBe(new Set(mine.map((e) => e.u)).size);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('a restart from changelog entries at any batch ends with the windows of the uninterrupted run', async () => {
    await fc.assert(
      fc.asyncProperty(events, fc.array(fc.nat(), { maxLength: 8 }), fc.nat(), async (list, cuts, at) => {
        const parts = batches(list, cuts);
        const whole = await run(WINDOWS, parts);
        const { rows } = await runWithRestart(WINDOWS, parts, at % (parts.length + 1));
        expect(finals(rows)).toEqual(finals(whole.output('clickhouse:out')));
      }),
      { numRuns: 60 },
    );
  });

  it('records replayed after a restore (state ahead of the committed offset) are not counted twice', async () => {
    await fc.assert(
      fc.asyncProperty(
        events,
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.nat(),
        fc.nat(),
        async (list, cuts, at, back) => {
          const parts = batches(list, cuts);
          const whole = await run(WINDOWS, parts);
          const cut = at % (parts.length + 1);
          const { rows } = await runWithRestart(WINDOWS, parts, cut, cut - (back % (cut + 1)));
          expect(finals(rows)).toEqual(finals(whole.output('clickhouse:out')));
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('fold and dedupe properties', () => {
  it('a fold replayed from changelog entries equals the live fold, record by record', async () => {
    await fc.assert(
      fc.asyncProperty(
        events,
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.nat(),
        fc.nat(),
        async (list, cuts, at, dup) => {
          // Redelivered events (same id) are dropped by the dedupe before the fold, also across the restart.
          const withDup = [...list, list[dup % list.length]!];
          const parts = batches(withDup, cuts);
          const whole = await run(FOLD, parts);
          const { rows, d } = await runWithRestart(FOLD, parts, at % (parts.length + 1));
          expect(rows).toEqual(whole.output('clickhouse:out'));
          const byKey = (x: typeof d) => Object.fromEntries(x.state('f').map((e) => [e.key, e.value as Row]));
          const state = byKey(d);
          expect(state).toEqual(byKey(whole));
          // And independently: per key, the count and the sum of its distinct events.
          for (const k of new Set(list.map((e) => e.k))) {
            const mine = list.filter((e) => e.k === k);
            expect(state[k]!.n).toBe(mine.length);
            expect(state[k]!.total).toBe(mine.reduce((n, e) => n + e.v, 0));
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
