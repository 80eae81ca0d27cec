// `fold`: event sourcing. The current state per key, updated by one handler per event type.
import { z } from 'zod';
import { didYouMean } from '../topology/diagnostics.ts';
import { expression, identifier } from '../topology/durations.ts';
import type { FieldType, Scope } from '../topology/types.ts';
import { DYN, mergeTypes, nullable, STRING } from '../topology/types.ts';
import { declaredFields, moduleFileFields } from './module.ts';
import { defineStep, RejectedRecord, slug, type Vars } from './step.ts';

/** A fold written in TypeScript: the state before the event (null for a new key) and the variables in, the new
 * state out (null leaves the state as it was and emits nothing). Synchronous and pure. */
export type FoldFunction = (
  state: Readonly<Vars> | null,
  vars: Readonly<Vars>,
  ctx: { readonly time: number; readonly record: { topic: string; partition: number } },
) => Vars | null | undefined;

export const fold = defineStep({
  kind: 'fold',
  summary: 'Event sourcing: keep the current state per key, one handler per event type.',
  description:
    'For each record, `by` (default `event.eventType`) names the handler in `on`; the handler sets state ' +
    'fields from CEL expressions that see the variables at this step (with `event` typed as that event type) ' +
    'and `state`, the state before this event (fields from `initial`, others null). The record that leaves ' +
    'the step is the new state (all its fields), emitted after every handled event. Records of types without ' +
    'a handler are skipped (`onUnknown: skip`) or dead-lettered. When expressions are not enough, `reduce` names ' +
    'a synchronous TypeScript function beside the topology, `(state, vars, { time, record }) => newState`, instead ' +
    'of `on` (state is null for a new key; returning null leaves it unchanged), with `output` declaring the state ' +
    'fields for later steps. State: the map of keys to states.',
  config: z
    .strictObject({
      key: expression('the entity the state belongs to (converted to a string)'),
      by: expression('the handler name for a record').default('event.eventType'),
      initial: z
        .record(identifier(), expression('an initial value'))
        .optional()
        .describe('Initial state fields (constant expressions); other fields start as null.'),
      on: z
        .record(z.string(), z.record(identifier(), expression('the new value of the state field')))
        .optional()
        .describe('Handlers by event type (the short Avro record name): state field -> expression.'),
      reduce: z
        .strictObject({
          ...moduleFileFields,
          output: z
            .record(z.string(), z.string())
            .describe('The state fields the function returns, with types (as for the `module` step).'),
        })
        .optional()
        .describe('Instead of `on`: a TypeScript function (state, vars, ctx) => new state.'),
      onUnknown: z
        .enum(['skip', 'deadLetter'])
        .default('skip')
        .describe('What to do with a record no handler matches.'),
      trigger: identifier()
        .optional()
        .describe(
          'A field added to each emitted record with the handler that made it (the value of `by`, e.g. the ' +
            'event type), for later steps and sinks; it is not part of the state. Not with `reduce`.',
        ),
    })
    .refine((c) => (c.on === undefined) !== (c.reduce === undefined), {
      message: 'a fold has either `on` (handlers by event type) or `reduce` (a TypeScript function)',
    })
    .refine((c) => c.trigger === undefined || c.reduce === undefined, {
      message: '`trigger` names the handler of `on`; a `reduce` function can set such a field itself',
      path: ['trigger'],
    }),
  examples: [
    {
      key: 'event.data.orderId',
      initial: { status: "'NEW'" },
      trigger: 'lastEvent',
      on: {
        OrderPlaced: { orderId: 'event.data.orderId', status: "'PLACED'", total: 'event.data.totalAmount' },
        OrderShipped: { status: "'SHIPPED'", carrier: 'event.data.carrier' },
      },
    },
    {
      key: 'event.data.customerId',
      reduce: {
        path: './modules/customer-totals.ts',
        export: 'customerTotals',
        output: { customerId: 'string', orders: 'double', spent: 'double', lastOrderAt: 'double' },
      },
    },
  ],
  stateful: true,
  rows: () => 'updates',
  stateKey: (c) => c.key,
  describe: (c) => `by ${c.key}: ${Object.keys(c.on ?? {}).join(', ')}`,
  idHint: (c) => slug(c.key.split('.').pop() ?? 'state'),
  moduleFile: (c) => (c.reduce ? { path: c.reduce.path, export: c.reduce.export, at: ['reduce', 'path'] } : undefined),
  check(c, ctx) {
    ctx.expr(c.key, ['key']);
    if (c.reduce) {
      ctx.file(c.reduce.path, ['reduce', 'path']);
      return declaredFields(c.reduce.output, ctx, ['reduce', 'output']);
    }
    ctx.expr(c.by, ['by']);
    const fields: Record<string, FieldType> = {};
    for (const [f, e] of Object.entries(c.initial ?? {})) fields[f] = ctx.expr(e, ['initial', f], { scope: {} }) ?? DYN;
    // Handlers read `state`, whose types come from the handlers: check them with state fields as dyn.
    const names = new Set(Object.keys(fields));
    for (const h of Object.values(c.on ?? {})) for (const f of Object.keys(h)) names.add(f);
    const loose: Scope = {
      ...ctx.scope,
      state: { kind: 'record', name: 'State', fields: Object.fromEntries([...names].map((n) => [n, DYN])) },
    };
    const setBy = new Map<string, number>();
    const handlers: Array<{ type: string; scope: Scope; f: string; e: string; t: FieldType }> = [];
    for (const [type, handler] of Object.entries(c.on ?? {})) {
      const ev = ctx.eventTypes.get(type);
      if (ctx.eventTypes.size > 0 && !ev) {
        ctx.report(
          'ref-unknown-event-type',
          `no event type '${type}' on the source`,
          ['on', type],
          didYouMean(type, ctx.eventTypes.keys()),
        );
      }
      const scope: Scope = ev ? { ...loose, event: ev } : loose;
      for (const [f, e] of Object.entries(handler)) {
        handlers.push({ type, scope, f, e, t: ctx.expr(e, ['on', type, f], { scope }) ?? DYN });
        setBy.set(f, (setBy.get(f) ?? 0) + 1);
      }
    }
    // A second, quiet look with `state` typed from the first (so `state.version + 1` is an integer, not dyn). What
    // the handlers set decides a number's sort; `initial` is only its starting value (`placedAt: 0`).
    const first = mergeHandlers(handlers);
    const typedState: FieldType = {
      kind: 'record',
      name: 'State',
      fields: Object.fromEntries([...names].map((n) => [n, known(first.get(n)) ?? fields[n] ?? DYN])),
    };
    const second = mergeHandlers(
      handlers.map((h) => ({
        ...h,
        t: ctx.expr(h.e, ['on', h.type, h.f], { scope: { ...h.scope, state: typedState }, quiet: true }) ?? h.t,
      })),
    );
    for (const [f, t] of second) {
      const init = fields[f];
      fields[f] = !init
        ? t
        : init.kind === 'double' && t.kind === 'double'
          ? { ...t, ...nullableOf(init) }
          : mergeTypes(init, t);
    }
    if (c.onUnknown === 'deadLetter' && !ctx.hasDeadLetter) {
      ctx.report(
        'ref-dead-letter-missing',
        'unknown events go to the dead letters but `spec.errors.deadLetter` is not set',
        ['onUnknown'],
      );
    }
    // The state is emitted after a handler ran: a field every handler sets is never missing from it.
    const handlerCount = Object.keys(c.on ?? {}).length;
    const out: Scope = {};
    for (const [f, t] of Object.entries(fields))
      out[f] = c.initial?.[f] !== undefined || setBy.get(f) === handlerCount ? t : nullable(t);
    if (c.trigger !== undefined) {
      if (c.trigger in out) {
        ctx.report('expr-type', `\`trigger\` '${c.trigger}' is also a state field`, ['trigger'], 'name it apart');
      }
      out[c.trigger] = STRING;
    }
    return out;
  },
  create(c, ctx) {
    const key = ctx.compile(c.key);
    const by = ctx.compile(c.by);
    const initial: Vars = {};
    const names = new Set<string>();
    for (const h of Object.values(c.on ?? {})) for (const f of Object.keys(h)) names.add(f);
    for (const n of names) initial[n] = null;
    for (const [f, e] of Object.entries(c.initial ?? {})) initial[f] = ctx.compile(e).evaluate({});
    const handlers = new Map(
      Object.entries(c.on ?? {}).map(([type, h]) => [
        type,
        Object.entries(h).map(([f, e]) => [f, ctx.compile(e)] as const),
      ]),
    );
    let states = new Map<string, Vars>();
    let changed: Set<string> | undefined;
    const reduce = c.reduce ? (ctx.module as unknown as FoldFunction) : undefined;
    return {
      process(vars, rc, out) {
        if (reduce) {
          const k = String(key.evaluate(vars));
          const next = reduce(states.get(k) ?? null, vars, rc) as unknown;
          if (next === null || next === undefined) return;
          if (typeof next !== 'object' || typeof (next as Promise<unknown>).then === 'function')
            throw new Error('a fold function must return the new state (an object) synchronously, or null');
          states.set(k, next as Vars);
          changed?.add(k);
          out.emit({ ...(next as Vars) }, rc);
          return;
        }
        const type = String(by.evaluate(vars));
        const handler = handlers.get(type);
        if (!handler) {
          if (c.onUnknown === 'deadLetter')
            out.reject(rc, new RejectedRecord('UnknownEventType', `no fold handler for '${type}'`));
          return;
        }
        const k = String(key.evaluate(vars));
        const prev = states.get(k) ?? initial;
        vars.state = prev;
        const next: Vars = { ...prev };
        for (const [f, e] of handler) next[f] = e.evaluate(vars);
        states.set(k, next);
        changed?.add(k);
        out.emit(c.trigger === undefined ? { ...next } : { ...next, [c.trigger]: type }, rc);
      },
      snapshot: () => Object.fromEntries(states),
      entries: () => [...states].map(([key, value]) => ({ key, value })),
      restore(s) {
        states = new Map(Object.entries(s as Record<string, Vars>));
      },
      changes() {
        if (!changed) {
          changed = new Set();
          return [];
        }
        const out: Array<[string, unknown]> = [];
        for (const k of changed) out.push([k, states.get(k) ?? null]);
        changed.clear();
        return out;
      },
      load(k, v) {
        if (v === null) states.delete(k);
        else states.set(k, v as Vars);
      },
    };
  },
});

/** Each state field's type over every handler that sets it. */
function mergeHandlers(handlers: ReadonlyArray<{ f: string; t: FieldType }>): Map<string, FieldType> {
  const out = new Map<string, FieldType>();
  for (const { f, t } of handlers) {
    const seen = out.get(f);
    out.set(f, seen ? mergeTypes(seen, t) : t);
  }
  return out;
}

function nullableOf(t: FieldType): { nullable?: boolean } {
  return t.nullable ? { nullable: true } : {};
}

const known = (t: FieldType | undefined) => (t && t.kind !== 'dyn' ? t : undefined);
