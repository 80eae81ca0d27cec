// `aggregate`: windows on event time (tumbling, hopping, session), grouped, with measures; watermarks decide
// when a window closes, allowed lateness how long it accepts updates, and later events go to the dead letters.
import { z } from 'zod';
import { duration, identifier } from '../topology/durations.ts';
import type { CompiledExpression } from '../topology/expressions.ts';
import type { FieldType, Scope } from '../topology/types.ts';
import { COUNT, DOUBLE, DYN, describeType, EPOCH_MS } from '../topology/types.ts';
import {
  init,
  MEASURE,
  MEASURE_MESSAGE,
  type MeasureFn,
  type MeasureKind,
  measureFromJson,
  measureToJson,
  merge,
  parseMeasure,
  result,
  SKETCHES,
  step,
} from './measures.ts';
import { defineStep, type Output, type RecordContext, RejectedRecord, slug, type Vars } from './step.ts';

const PER_BATCH_HINT: Partial<Record<MeasureKind, string>> = {
  approxDistinct: 'emit distinct(x) per batch (uniqExact in ClickHouse), or use emit: onClose',
  topK: 'group by x and emit count() per batch (topK in ClickHouse), or use emit: onClose',
  quantile: 'use emit: onClose, or compute quantiles in ClickHouse from the raw values',
  quantiles: 'use emit: onClose, or compute quantiles in ClickHouse from the raw values',
};

const windowSchema = z
  .strictObject({
    tumbling: duration().optional().describe('Fixed, non-overlapping windows of this size.'),
    hopping: duration().optional().describe('Overlapping windows of this size, one starting every `every`.'),
    every: duration().optional().describe('With `hopping`: how often a window starts (divides the size).'),
    session: duration().optional().describe('Sessions per group that close after this gap without events.'),
    on: z
      .string()
      .optional()
      .describe('CEL expression giving the event time (epoch ms) used to place a record; default: its event time.'),
    allowedLateness: duration()
      .prefault('0s')
      .describe('How long after a window ends (in event time) late records still update it.'),
  })
  .superRefine((w, ctx) => {
    const kinds = [w.tumbling, w.hopping, w.session].filter((x) => x !== undefined).length;
    if (kinds !== 1) ctx.addIssue({ code: 'custom', message: 'a window is exactly one of tumbling, hopping, session' });
    if (w.hopping !== undefined && (w.every === undefined || w.every <= 0 || w.hopping % w.every !== 0)) {
      ctx.addIssue({
        code: 'custom',
        message: 'a hopping window needs `every`, a divisor of its size',
        path: ['every'],
      });
    }
    if (w.hopping === undefined && w.every !== undefined) {
      ctx.addIssue({ code: 'custom', message: '`every` only applies to hopping windows', path: ['every'] });
    }
    for (const d of [w.tumbling, w.hopping, w.session]) {
      if (d === 0) ctx.addIssue({ code: 'custom', message: 'a window size must be more than 0' });
    }
  });

export const aggregate = defineStep({
  kind: 'aggregate',
  summary: 'Windowed aggregation on event time: group, measure, emit per window.',
  description:
    'Places each record in windows by event time (`window.on`), groups by `groupBy` and computes `measures` ' +
    '(`count()`, `count(x)` (non-null), `sum(x)`, `min(x)`, `max(x)`, `avg(x)`, `distinct(x)`; and three ' +
    'bounded-memory sketches: `approxDistinct(x)`, the number of distinct values by HyperLogLog (precision 14, ' +
    '0.81% standard error); `topK(x, k)`, the k (default 10, at most 1000) most frequent values as a list of ' +
    '`{ value, count }`, largest first, by Space-Saving with 4k counters (counts exact while the window has at most ' +
    '4k distinct values, else upper bounds too high by at most n/(4k)); `quantile(x, q)` with q a literal in (0, 1), ' +
    'or `quantiles(x, [q1, q2, ...])` for a list, the nearest-rank quantiles of the numbers x by a KLL sketch ' +
    '(k = 200: exact up to 200 values, else rank error within 1.65%). Nulls are skipped by all but `count()`. ' +
    'The watermark is the smallest, over the source partitions, of the largest event time minus ' +
    '`source.maxOutOfOrderness`; it moves after each batch. With `emit: onClose` a window emits one row when ' +
    'the watermark passes its end, and an updated row for each batch of late records within ' +
    '`allowedLateness` (pair with a ReplacingMergeTree or a compacted topic). With `emit: onUpdate` each batch ' +
    'emits the current value of every window it changed, open or closed (a live view: the last row per window ' +
    'is its result). With `emit: perBatch` each batch ' +
    'emits mergeable partial rows (count, sum, min, max, and the distinct values as a list) for the windows it ' +
    'touched (pair with SummingMergeTree / AggregatingMergeTree; ClickHouse finishes the windows); `avg` and the ' +
    'sketches need `emit: onClose`. Records ' +
    'later than `allowedLateness` go to the dead letters (`onLate: deadLetter`) or are dropped. ' +
    'Output fields: the group fields, `windowStart`, `windowEnd` (epoch ms) and the measures.',
  config: z.strictObject({
    window: windowSchema.describe('The window a record falls in: exactly one of tumbling, hopping, session.'),
    groupBy: z
      .union([z.array(z.string()), z.record(identifier(), z.string())])
      .prefault([])
      .describe(
        'Group fields: a list of variables or paths (the last segment names the field), or a map name: expression.',
      ),
    measures: z
      .record(identifier(), z.string().regex(MEASURE, MEASURE_MESSAGE))
      .describe('Output field: `fn(expression)`, or `topK(x, k)`, `quantile(x, q)`, `quantiles(x, [q, ...])`.'),
    emit: z
      .enum(['onClose', 'onUpdate', 'perBatch'])
      .default('onClose')
      .describe('Final rows per window, current rows per batch that changed them, or partial rows per batch.'),
    onLate: z
      .enum(['deadLetter', 'drop'])
      .default('deadLetter')
      .describe('What happens to records too late for their window.'),
  }),
  examples: [
    {
      window: { tumbling: '1m', on: 'at', allowedLateness: '10m' },
      groupBy: ['segment'],
      measures: { revenue: 'sum(amount)', orders: 'count()' },
    },
    {
      window: { hopping: '10m', every: '1m' },
      groupBy: { product: 'productId' },
      measures: { units: 'sum(quantity)', buyers: 'distinct(customerId)' },
      emit: 'perBatch',
    },
    { window: { session: '30m' }, groupBy: ['customerId'], measures: { orders: 'count()', spent: 'sum(amount)' } },
    {
      window: { tumbling: '1h', on: 'at' },
      groupBy: ['region'],
      measures: {
        customers: 'approxDistinct(customerId)',
        bestSellers: 'topK(productId, 5)',
        p99Latency: 'quantile(latencyMs, 0.99)',
        latency: 'quantiles(latencyMs, [0.5, 0.9, 0.99])',
      },
    },
  ],
  stateful: true,
  rows: (c) => (c.emit === 'perBatch' ? 'partials' : c.emit === 'onUpdate' ? 'updates' : undefined),
  // Partials per batch are finished by the sink (ClickHouse adds them up): any worker may write any of them.
  stateKey: (c) => (c.emit === 'perBatch' ? undefined : groupKey(groupEntries(c.groupBy).map(([, src]) => src))),
  describe(c) {
    const w = c.window as { tumbling?: number; hopping?: number; session?: number };
    const size = w.tumbling ?? w.hopping ?? w.session ?? 0;
    const kind = w.tumbling ? 'tumbling' : w.hopping ? 'hopping' : 'session';
    return `${kind} ${size / 1000}s by ${JSON.stringify(c.groupBy)}: ${Object.keys(c.measures).join(', ')}`;
  },
  idHint: (c) => slug(groupNames(c.groupBy).join('-') || 'all'),
  check(c, ctx) {
    const out: Scope = {};
    if (c.window.on !== undefined) ctx.expr(c.window.on, ['window', 'on']);
    for (const [name, src, at] of groupEntries(c.groupBy)) {
      if (!name) {
        ctx.report(
          'schema-invalid-value',
          `cannot name a group field after '${src}'`,
          at,
          'use the map form: { name: expression }',
        );
        continue;
      }
      out[name] = ctx.expr(src, at) ?? DYN;
    }
    out.windowStart = EPOCH_MS;
    out.windowEnd = EPOCH_MS;
    if (c.window.session !== undefined && c.emit === 'perBatch') {
      ctx.report('window-invalid', 'session windows cannot emit partial rows per batch', ['emit'], 'use emit: onClose');
    }
    for (const [name, m] of Object.entries(c.measures)) {
      const { fn: f, arg, offset, problem } = parseMeasure(m)!;
      const fn = f.kind;
      const at = ['measures', name];
      if (problem !== undefined) ctx.report('measure-invalid', problem, at);
      if (fn === 'avg' && c.emit === 'perBatch') {
        ctx.report(
          'window-invalid',
          'avg is not mergeable across partial rows',
          at,
          'emit sum(x) and count(x), divide in ClickHouse',
        );
      }
      if (SKETCHES.has(fn) && c.emit === 'perBatch') {
        ctx.report('window-invalid', `${fn} is a sketch, not mergeable into partial rows`, at, PER_BATCH_HINT[fn]);
      }
      if (arg.trim() === '' && fn !== 'count') {
        ctx.report('measure-invalid', `${fn}() needs an expression`, at);
        continue;
      }
      const t: FieldType | undefined = arg.trim() === '' ? undefined : ctx.expr(arg, at, { offset });
      if (fn === 'min' || fn === 'max') out[name] = t ?? DYN;
      else if (fn === 'distinct' && c.emit === 'perBatch') out[name] = { kind: 'list', items: t ?? DYN };
      else if (fn === 'topK') {
        // Nulls are not counted, so the values are not nullable.
        const value = t ? { ...t, nullable: false } : DYN;
        out[name] = { kind: 'list', items: { kind: 'record', name: 'TopK', fields: { value, count: COUNT } } };
      } else if (fn === 'quantiles') out[name] = { kind: 'list', items: DOUBLE, nullable: true };
      else if (fn === 'count' || fn === 'distinct' || fn === 'approxDistinct') out[name] = COUNT;
      else if (fn === 'sum' && t?.kind === 'double' && (t.number === 'integer' || t.number === 'count')) {
        out[name] = { kind: 'double', number: t.number };
      } else out[name] = DOUBLE;
      if ((fn === 'quantile' || fn === 'quantiles') && t && t.kind !== 'double' && t.kind !== 'dyn') {
        ctx.report('measure-invalid', `${fn} needs a number, not ${describeType(t)}`, at);
      }
    }
    if (c.onLate === 'deadLetter' && !ctx.hasDeadLetter) {
      ctx.report(
        'ref-dead-letter-missing',
        'late records go to the dead letters but `spec.errors.deadLetter` is not set',
        ['onLate'],
        'set errors.deadLetter, or onLate: drop',
      );
    }
    return out;
  },
  create(c, ctx) {
    const on = c.window.on !== undefined ? ctx.compile(c.window.on) : undefined;
    const groups = groupEntries(c.groupBy).map(([name, src]) => ({ name: name!, expr: ctx.compile(src) }));
    const measures = Object.entries(c.measures).map(([name, m]) => {
      const { fn, arg } = parseMeasure(m)!;
      return { name, fn, arg: arg.trim() === '' ? undefined : ctx.compile(arg) };
    });
    const w = c.window;
    const size = w.tumbling ?? w.hopping ?? 0;
    const every = w.every ?? size;
    const gap = w.session ?? 0;
    const lateness = w.allowedLateness;
    const perBatch = c.emit === 'perBatch';
    const onUpdate = c.emit === 'onUpdate';
    let watermark = Number.NEGATIVE_INFINITY;
    let accs = new Map<string, Acc>();
    let sessions = new Map<string, Acc[]>();
    /** Keys of windows (`<start>|<group>`) or session lists (`session|<group>`) changed since `changes()`. */
    let changed: Set<string> | undefined;
    // Partial rows leave nothing behind a batch (every window it touched is emitted, reset and dropped): only the
    // watermark is state worth keeping.
    const windowChanged = (key: string) => {
      if (!perBatch) changed?.add(key);
    };
    let watermarkChanged = false;

    const late = (rc: RecordContext, out: Output, t: number) => {
      if (c.onLate === 'deadLetter') {
        out.reject(
          rc,
          new RejectedRecord(
            'LateEvent',
            `event time ${new Date(t).toISOString()} is behind the watermark ${new Date(watermark).toISOString()} by more than the allowed lateness`,
          ),
        );
      }
    };
    const groupScratch: unknown[] = new Array(groups.length);
    const valScratch: unknown[] = new Array(measures.length);
    const newAcc = (start: number, end: number, group: unknown[], gk: string, rc: RecordContext): Acc => ({
      start,
      end,
      group: group.slice(),
      gk,
      rc,
      m: measures.map((x) => init(x.fn)),
      dirty: false,
      emitted: false,
      applied: {},
      appliedIn: -1,
    });
    /** Batches seen (advance ends each): a record fanned out by an earlier step adds once per item. */
    let batch = 0;
    /** False when the window already holds this record (state read back from a changelog, record replayed). */
    const add = (acc: Acc, vals: unknown[], rc: RecordContext): boolean => {
      const p = rc.record.partition;
      const offset = Number(rc.record.offset);
      const last = acc.applied[p] ?? -1;
      // The same offset again within the batch is another item of one record (a module or explode step).
      if (offset < last || (offset === last && acc.appliedIn !== batch)) return false;
      acc.applied[p] = offset;
      acc.appliedIn = batch;
      for (let i = 0; i < measures.length; i++)
        acc.m[i] = step(measures[i]!.fn, acc.m[i], vals[i], measures[i]!.arg === undefined);
      acc.dirty = true;
      acc.rc = rc;
      return true;
    };
    const toEntry = (a: Acc) => ({
      start: a.start,
      end: a.end,
      group: a.group,
      measures: a.m.map((v, i) => measureToJson(measures[i]!.fn, v)),
      emitted: a.emitted,
      dirty: a.dirty,
      applied: a.applied,
    });
    const fromEntry = (x: ReturnType<typeof toEntry>): Acc => ({
      start: x.start,
      end: x.end,
      group: x.group,
      gk: x.group.length === 1 ? String(x.group[0]) : x.group.map(String).join('\u0001'),
      m: x.measures.map((v, i) => measureFromJson(measures[i]!.fn, v)),
      dirty: x.dirty ?? false,
      emitted: x.emitted,
      applied: x.applied ?? {},
      appliedIn: -1,
      rc: {
        record: { topic: '', partition: -1, offset: -1, key: null, value: null, timestamp: x.end },
        time: x.end,
      },
    });
    const row = (acc: Acc): Vars => {
      const r: Vars = {};
      for (let i = 0; i < groups.length; i++) r[groups[i]!.name] = acc.group[i];
      r.windowStart = acc.start;
      r.windowEnd = acc.end;
      for (let i = 0; i < measures.length; i++) r[measures[i]!.name] = result(measures[i]!.fn, acc.m[i], perBatch);
      return r;
    };
    return {
      process(vars, rc, out) {
        const t = on ? Number(on.evaluate(vars)) : rc.time;
        if (!Number.isFinite(t)) throw new Error(`event time is not a number: ${String(t)}`);
        // Scratch arrays, reused per record; a window keeps a copy of the group values when it opens.
        for (let g = 0; g < groups.length; g++) groupScratch[g] = groups[g]!.expr.evaluate(vars);
        const gk = groups.length === 1 ? String(groupScratch[0]) : groupScratch.map(String).join('\u0001');
        for (let m = 0; m < measures.length; m++) valScratch[m] = measures[m]!.arg?.evaluate(vars);
        const vals = valScratch;
        const group = groupScratch;
        if (gap > 0) {
          if (t + gap + lateness <= watermark) return late(rc, out, t);
          const list = sessions.get(gk) ?? [];
          let acc = newAcc(t, t + gap, group, gk, rc);
          const keep: Acc[] = [];
          let merged = 0;
          for (const s of list) {
            if (s.start <= t + gap && t < s.end) {
              acc = mergeAcc(acc, s, measures);
              merged++;
            } else keep.push(s);
          }
          // A replayed record some session already holds changes nothing.
          if (!add(acc, vals, rc) && merged <= 1) return;
          keep.push(acc);
          sessions.set(gk, keep);
          changed?.add(`session|${gk}`);
          return;
        }
        const first = Math.floor(t / every) * every;
        if (first + size + lateness <= watermark) return late(rc, out, t);
        for (let s = first; s > t - size; s -= every) {
          const key = `${s}|${gk}`;
          let acc = accs.get(key);
          if (!acc) {
            acc = newAcc(s, s + size, group, gk, rc);
            accs.set(key, acc);
          }
          if (add(acc, vals, rc)) windowChanged(key);
        }
      },
      advance(time, out) {
        batch++;
        if (time.watermark > watermark && Number.isFinite(time.watermark)) {
          watermark = time.watermark;
          watermarkChanged = true;
        }
        const all: Acc[] = gap > 0 ? [...sessions.values()].flat() : [...accs.values()];
        const due = all
          .filter((a) => a.dirty && (perBatch || onUpdate || time.final || a.end <= watermark))
          .sort((a, b) => a.end - b.end || (a.gk < b.gk ? -1 : a.gk > b.gk ? 1 : 0));
        for (const a of due) {
          a.dirty = false;
          a.emitted = true;
          out.emit(row(a), { record: a.rc.record, time: a.end - 1 });
          if (perBatch) a.m = measures.map((x) => init(x.fn));
          windowChanged(gap > 0 ? `session|${a.gk}` : `${a.start}|${a.gk}`);
        }
        // Forget windows that can no longer change.
        const done = (a: Acc) => time.final || (perBatch && !a.dirty) || a.end + lateness <= watermark;
        if (gap > 0) {
          for (const [k, list] of sessions) {
            const rest = list.filter((a) => !done(a) || a.dirty);
            if (rest.length === list.length) continue;
            if (rest.length === 0) sessions.delete(k);
            else sessions.set(k, rest);
            changed?.add(`session|${k}`);
          }
        } else {
          for (const [k, a] of accs) {
            if (!done(a) || a.dirty) continue;
            accs.delete(k);
            windowChanged(k);
          }
        }
      },
      release(partition) {
        // A window fed by this partition alone (a stage after a repartition by its group) leaves with it: kept, it
        // would close here later, and its deletion, written to another partition's changelog, would outrank the
        // live window its new owner keeps when one worker reads both back. A window fed by several stays.
        const only = (a: Acc) => {
          const fed = Object.keys(a.applied);
          return fed.length === 1 && Number(fed[0]) === partition;
        };
        // Forgotten, not deleted: nothing of it goes to a changelog from here.
        for (const [k, a] of accs) {
          if (!only(a)) continue;
          accs.delete(k);
          changed?.delete(k);
        }
        for (const [k, list] of sessions) {
          if (!list.every(only)) continue;
          sessions.delete(k);
          changed?.delete(`session|${k}`);
        }
      },
      changes() {
        if (!changed) {
          changed = new Set();
          return [];
        }
        const out: Array<[string, unknown]> = [];
        for (const k of changed) {
          if (k.startsWith('session|')) {
            const list = sessions.get(k.slice('session|'.length));
            out.push([k, list ? list.map(toEntry) : null]);
          } else {
            const a = accs.get(k);
            out.push([k, a ? toEntry(a) : null]);
          }
        }
        changed.clear();
        if (watermarkChanged) out.push(['@watermark', watermark]);
        watermarkChanged = false;
        return out;
      },
      load(k, v) {
        if (k === '@watermark') {
          if (typeof v === 'number' && v > watermark) watermark = v;
        } else if (k.startsWith('session|')) {
          const gk = k.slice('session|'.length);
          if (v === null) sessions.delete(gk);
          else sessions.set(gk, (v as ReturnType<typeof toEntry>[]).map(fromEntry));
        } else {
          // A window this worker holds live (fed by a partition it owns) is newer than any entry another owner
          // wrote for it to the changelog of the partition now assigned: that entry is dropped.
          const live = accs.get(k);
          const entry = v as ReturnType<typeof toEntry> | null;
          if (live && (entry === null || covers(live.applied, entry.applied ?? {}))) return;
          if (entry === null) accs.delete(k);
          else accs.set(k, fromEntry(entry));
        }
      },
      // The windows still open, each as the row it would emit now, keyed by its group (several: their list).
      entries: () =>
        [...accs.values(), ...[...sessions.values()].flat()].map((a) => ({
          key: a.group.length === 1 ? a.group[0] : a.group,
          windowStart: a.start,
          value: row(a),
        })),
      snapshot: () => ({
        watermark,
        windows: [...accs.values(), ...[...sessions.values()].flat()].map(toEntry),
      }),
      restore(s) {
        const snap = s as { watermark: number; windows: ReturnType<typeof toEntry>[] };
        watermark = snap.watermark;
        accs = new Map();
        sessions = new Map();
        for (const x of snap.windows) {
          const acc = fromEntry(x);
          if (gap > 0) sessions.set(acc.gk, [...(sessions.get(acc.gk) ?? []), acc]);
          else accs.set(`${x.start}|${acc.gk}`, acc);
        }
      },
    };
  },
});

interface Acc {
  start: number;
  end: number;
  group: unknown[];
  gk: string;
  m: unknown[];
  dirty: boolean;
  emitted: boolean;
  /** Per source partition, the offset of the last record added: a replayed record is not added twice. */
  applied: Record<number, number>;
  /** The batch that added it (not kept in the changelog: a record read back is from an earlier batch). */
  appliedIn: number;
  rc: RecordContext;
}

/** Whether `a` holds every record `b` does: at or past its offset on each partition that fed `b`. */
function covers(a: Record<number, number>, b: Record<number, number>): boolean {
  for (const [p, offset] of Object.entries(b)) if ((a[Number(p)] ?? -1) < offset) return false;
  return true;
}

function groupNames(g: string[] | Record<string, string>): string[] {
  return groupEntries(g).map(([n]) => n ?? '?');
}

/** One key for the group-by expressions: the expression itself for one, a joined string for several. */
function groupKey(exprs: string[]): string {
  if (exprs.length === 0) return "'all'";
  if (exprs.length === 1) return exprs[0]!;
  return exprs.map((e) => `string(${e})`).join(" + '|' + ");
}

function groupEntries(g: string[] | Record<string, string>): [string | undefined, string, (string | number)[]][] {
  if (Array.isArray(g)) {
    return g.map((src, i) => {
      const path = /^\s*[A-Za-z_]\w*(\s*\.\s*[A-Za-z_]\w*)*\s*$/.test(src)
        ? src.trim().split('.').pop()!.trim()
        : undefined;
      return [path, src, ['groupBy', i]];
    });
  }
  return Object.entries(g).map(([n, src]) => [n, src, ['groupBy', n]]);
}

function mergeAcc(a: Acc, b: Acc, measures: { fn: MeasureFn; arg?: CompiledExpression }[]): Acc {
  const m = measures.map((x, i) => merge(x.fn, a.m[i], b.m[i]));
  const applied = { ...a.applied };
  for (const [p, o] of Object.entries(b.applied)) applied[Number(p)] = Math.max(applied[Number(p)] ?? -1, o);
  return {
    ...a,
    appliedIn: Math.max(a.appliedIn, b.appliedIn),
    start: Math.min(a.start, b.start),
    end: Math.max(a.end, b.end),
    m,
    emitted: a.emitted || b.emitted,
    applied,
  };
}
