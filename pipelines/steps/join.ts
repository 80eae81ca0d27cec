// `join`: a windowed stream-stream join of this flow with another (a source, or a step's output), by key, in event
// time. On Kafka both flows are written, keyed by their join key, to one internal topic that the join's own stage
// reads (compile/stages.ts), so they are co-partitioned by construction. Each side's records wait in the state
// (changelog) until the watermark passes their time plus `within` and `grace`; a pair within `within` of each
// other is emitted when its second record comes; a record that never met one is emitted alone at that point by a
// left (this side) or outer (either side) join.
import { z } from 'zod';
import { duration, expression, formatDuration, identifier } from '../topology/durations.ts';
import type { FieldType, Scope } from '../topology/types.ts';
import { nullable, STRING } from '../topology/types.ts';
import { repartitionKey } from './repartition.ts';
import { defineStep, type Output, type RecordContext, RejectedRecord, type StateEntry, type Vars } from './step.ts';

/** One waiting record: its event time, its variables, whether it met one, and where it came from. */
interface Waiting {
  t: number;
  v: Vars;
  m: boolean;
  /** Provenance for what it becomes later (topic, partition, offset): dead letters point at it. */
  at: [string, number, string];
}

/** What waits under one key: this flow's records (`l`) and the other's (`r`), and the partition the key is on. */
interface Side2 {
  l: Waiting[];
  r: Waiting[];
  p: number;
}

const JOIN_TYPES = ['inner', 'left', 'outer'] as const;

export const join = defineStep({
  kind: 'join',
  summary: 'Join this flow with another source or step by key, within a window of event time.',
  description:
    'Pairs each record with the records of `with` whose key is equal (`on`: one expression for both flows, or ' +
    '`[this flow, other flow]`) and whose event times are at most `within` apart; a pair is emitted as soon as ' +
    'its second record comes, with the variables of this flow plus `as` (default: the name in `with`) holding ' +
    "the other record's `event` (or its variables, when steps before the join replaced it). `type: left` also " +
    'emits each record of this flow that met none, with `as` null, once the watermark passes its time plus ' +
    '`within` and `grace`; `type: outer` does so for both flows (the variables of this flow null). Records ' +
    'later than that go to the dead letters (`onLate: deadLetter`) or are dropped, as windows do. The records ' +
    'waiting are the state (changelog). On Kafka both flows are written, keyed by `on`, to one internal topic ' +
    '(`<group>.<step id>.repartition`) that the join reads as its own consumer group: the two flows are ' +
    'co-partitioned whatever their source topics are, with any number of workers. `key` becomes the join key.',
  config: z.strictObject({
    with: z.string().min(1).describe('The other flow: a source under spec.sources, or the id of an earlier step.'),
    on: z
      .union([expression('the join key of both flows'), z.tuple([z.string().min(1), z.string().min(1)])])
      .describe('The join key: one expression for both flows, or [this flow, the other flow].'),
    within: duration().describe('How far apart in event time two records may be and still join.'),
    grace: duration()
      .prefault('0s')
      .describe('How long after `within` (in event time) a record still waits for its partner.'),
    type: z
      .enum(JOIN_TYPES)
      .default('inner')
      .describe('inner: pairs only; left: and unmatched records of this flow; outer: and of both.'),
    as: identifier().optional().describe('The variable holding the other record (default: the name in `with`).'),
    onLate: z.enum(['deadLetter', 'drop']).default('deadLetter').describe('What happens to records too late to join.'),
    partitions: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Partitions of the internal topic (the most workers that share the join); default: the source’s.'),
    exactlyOnce: z
      .boolean()
      .default(true)
      .describe('Write the internal topic in transactions, with the offsets of the records read.'),
  }),
  examples: [
    { with: 'payments', on: 'event.data.orderId', within: '10m', type: 'left' },
    { with: 'shipments', on: ['orderId', 'event.data.orderId'], within: '1d', as: 'shipment' },
  ],
  stateful: true,
  describe: (c) =>
    `${c.type} join ${c.with}${c.as ? ` as ${c.as}` : ''} on ${[...new Set(onOf(c.on))].join(' = ')} within ${formatDuration(c.within)}`,
  idHint: (c) => `${c.with}`,
  inputs: (c) => [c.with],
  partitionKeys: (c) => onOf(c.on),
  check(c, ctx) {
    const other = ctx.inputs[0];
    const [left, right] = onOf(c.on);
    const lt = ctx.expr(left!, typeof c.on === 'string' ? ['on'] : ['on', 0]);
    const rt = other ? ctx.expr(right!, typeof c.on === 'string' ? ['on'] : ['on', 1], { scope: other }) : undefined;
    for (const [t, at] of [
      [lt, 0],
      [rt, 1],
    ] as const) {
      if (t && (t.kind === 'record' || t.kind === 'list' || t.kind === 'map'))
        ctx.report(
          'join-key-invalid',
          `the join key of ${at === 0 ? 'this flow' : `'${c.with}'`} is a ${t.kind}, not a value both flows share`,
          typeof c.on === 'string' ? ['on'] : ['on', at],
          'join on a string or a number field, e.g. event.data.orderId',
        );
    }
    if (lt && rt && keySort(lt) !== keySort(rt) && keySort(lt) !== 'dyn' && keySort(rt) !== 'dyn')
      ctx.report(
        'join-key-invalid',
        `the join keys differ in type: ${keySort(lt)} here, ${keySort(rt)} in '${c.with}'; they are compared as strings`,
        ['on'],
        'make both the same type (string(...) or int(...)), so that equal keys meet',
      );
    if (c.onLate === 'deadLetter' && !ctx.hasDeadLetter)
      ctx.report(
        'ref-dead-letter-missing',
        'late records go to the dead letters but `spec.errors.deadLetter` is not set',
        ['onLate'],
        'set errors.deadLetter, or onLate: drop',
      );
    if (c.as === undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(c.with))
      ctx.report(
        'schema-invalid-value',
        `'${c.with}' is not a variable name, and \`as\` is not given`,
        ['with'],
        'add as: <name> for the variable that holds the other record',
      );
    const otherRecord = other ? recordOf(other) : ({ kind: 'dyn' } as FieldType);
    const mine: Scope =
      c.type === 'outer' ? Object.fromEntries(Object.entries(ctx.scope).map(([k, t]) => [k, nullable(t)])) : ctx.scope;
    return {
      ...mine,
      key: nullable(STRING),
      [c.as ?? c.with]: c.type === 'inner' ? otherRecord : nullable(otherRecord),
    };
  },
  create(c, ctx) {
    const [left, right] = onOf(c.on).map((e) => ctx.compile(e));
    const as = c.as ?? c.with;
    const wait = c.within + c.grace;
    let state = new Map<string, Side2>();
    let changed: Set<string> | undefined;
    let watermark = Number.NEGATIVE_INFINITY;
    /** This flow's variables, all null: what a record of the other flow that met none comes with (outer). */
    const none: Vars = Object.fromEntries(Object.keys(ctx.scope ?? {}).map((k) => [k, null]));
    /** The other record as the variable `as` holds it. */
    const otherValue = (v: Vars) => ('event' in v ? v.event : v);
    const keep = (v: Vars): Vars => {
      const { record: _record, ...rest } = v;
      return rest;
    };
    const pair = (l: Vars, r: Vars | null, key: string): Vars => ({
      ...l,
      key,
      [as]: r === null ? null : otherValue(r),
    });
    const contextOf = (w: Waiting, time: number): RecordContext => ({
      record: { topic: w.at[0], partition: w.at[1], offset: w.at[2], key: null, value: null, timestamp: time },
      time,
    });
    const late = (rc: RecordContext, out: Output, t: number, wm: number) => {
      if (c.onLate === 'deadLetter')
        out.reject(
          rc,
          new RejectedRecord(
            'LateEvent',
            `event time ${new Date(t).toISOString()} is behind the watermark ${new Date(wm).toISOString()} by more than within + grace`,
          ),
        );
    };
    return {
      process(vars, rc, out, input = 0) {
        const t = rc.time;
        // In a join's stage, the partition's own: the stage-wide one, moved by the other partitions, would make a
        // partition's backlog late (one restored without a marker, or held back by a killed producer's transaction).
        const wm = rc.partitionWatermark ?? watermark;
        if (t + wait < wm) return late(rc, out, t, wm);
        const key = repartitionKey((input === 0 ? left! : right!).evaluate(vars));
        if (key === null) return;
        let s = state.get(key);
        if (!s) {
          s = { l: [], r: [], p: rc.record.partition };
          state.set(key, s);
        }
        const mine = input === 0 ? s.l : s.r;
        const theirs = input === 0 ? s.r : s.l;
        const at: Waiting['at'] = [rc.record.topic, rc.record.partition, String(rc.record.offset)];
        // A record read again (a batch replayed after a crash, before its state marker) waits once.
        if (mine.some((w) => w.at[1] === at[1] && w.at[2] === at[2] && w.at[0] === at[0])) return;
        const w: Waiting = { t, v: keep(vars), m: false, at };
        for (const o of theirs) {
          if (Math.abs(o.t - t) > c.within) continue;
          o.m = true;
          w.m = true;
          const time = Math.max(o.t, t);
          out.emit(input === 0 ? pair({ ...vars }, o.v, key) : pair({ ...o.v, record: rc.record }, vars, key), {
            record: rc.record,
            time,
          });
        }
        mine.push(w);
        changed?.add(key);
      },
      advance(ti, out) {
        if (ti.watermark > watermark) watermark = ti.watermark;
        // In a join's stage each partition's records leave with its own batches, by its own watermark, as in
        // Kafka Streams (stream time per task, moved by records): what that changes goes to its own changelog
        // partition, with its offsets. Offline (one plan, several source topics) all go by the one watermark.
        const own = ti.partition !== undefined && ti.partitionWatermark !== undefined;
        const until = own ? ti.partitionWatermark! : watermark;
        for (const [key, s] of state) {
          if (own && s.p !== ti.partition) continue;
          for (const side of ['l', 'r'] as const) {
            const list = s[side];
            if (list.length === 0 || list[0]!.t + wait >= until) continue;
            const kept: Waiting[] = [];
            for (const w of list) {
              if (w.t + wait >= until) {
                kept.push(w);
                continue;
              }
              if (!w.m && side === 'l' && c.type !== 'inner') out.emit(pair(w.v, null, key), contextOf(w, w.t));
              if (!w.m && side === 'r' && c.type === 'outer')
                out.emit({ ...none, key, [as]: otherValue(w.v) }, contextOf(w, w.t));
            }
            s[side] = kept;
            changed?.add(key);
          }
          if (s.l.length === 0 && s.r.length === 0) state.delete(key);
        }
      },
      release(partition) {
        for (const [key, s] of state) {
          if (s.p !== partition) continue;
          state.delete(key);
          changed?.delete(key);
        }
      },
      snapshot: () => Object.fromEntries(state),
      entries: (): StateEntry[] => [...state].map(([key, s]) => ({ key, value: s })),
      restore(s) {
        state = new Map(Object.entries(s as Record<string, Side2>));
      },
      changes() {
        if (!changed) {
          changed = new Set();
          return [];
        }
        const out: Array<[string, unknown]> = [];
        for (const k of changed) out.push([k, state.get(k) ?? null]);
        changed.clear();
        return out;
      },
      load(k, v) {
        if (v === null) state.delete(k);
        else state.set(k, v as Side2);
      },
    };
  },
});

/** The join key expressions: [this flow, the other flow]. */
function onOf(on: string | readonly [string, string]): [string, string] {
  return typeof on === 'string' ? [on, on] : [on[0], on[1]];
}

/** What a key is compared as, for the type check of both sides. */
function keySort(t: FieldType): string {
  return t.kind === 'double' ? 'number' : t.kind;
}

/** The type of the other record as `as` holds it: its `event`, or its variables. */
function recordOf(scope: Scope): FieldType {
  if (scope.event) return scope.event;
  const { key: _key, record: _record, ...fields } = scope;
  return { kind: 'record', name: 'Joined', fields };
}
