// `dedupe`: drop a record whose key was already seen within a horizon of event time.
import { z } from 'zod';
import { duration, expression } from '../topology/durations.ts';
import { defineStep, shortHash } from './step.ts';

export const dedupe = defineStep({
  kind: 'dedupe',
  summary: 'Drop records whose key was already seen within a horizon of event time.',
  description:
    'Keeps the keys seen in the last `horizon` of event time (per topology, not per partition: use a key ' +
    'that is unique per event, such as `event.eventId`). Keys older than the watermark minus the horizon are ' +
    'forgotten after each batch. State: the map of keys to the event time they were first seen.',
  config: z.strictObject({
    key: expression('the identity of a record; records with an equal key are duplicates'),
    horizon: duration().prefault('1h').describe('How long (in event time) a key is remembered.'),
  }),
  examples: [{ key: 'event.eventId', horizon: '1h' }],
  stateful: true,
  stateKey: (c) => c.key,
  describe: (c) => `by ${c.key}`,
  idHint: (c) => shortHash(c.key),
  check(c, ctx) {
    ctx.expr(c.key, ['key']);
    return ctx.scope;
  },
  create(c, ctx) {
    const key = ctx.compile(c.key);
    let seen = new Map<string, number>();
    let changed: Map<string, number | null> | undefined;
    return {
      process(vars, rc, out) {
        const k = String(key.evaluate(vars));
        if (seen.has(k)) return;
        seen.set(k, rc.time);
        changed?.set(k, rc.time);
        out.emit(vars, rc);
      },
      advance(t) {
        const cutoff = t.watermark - c.horizon;
        // Insertion order is close to event-time order: evict from the front until a newer key.
        for (const [k, at] of seen) {
          if (at >= cutoff) break;
          seen.delete(k);
          // A key seen and forgotten within one batch never reaches the changelog.
          if (changed?.get(k) !== undefined) changed.delete(k);
          else changed?.set(k, null);
        }
      },
      snapshot: () => Object.fromEntries(seen),
      entries: () => [...seen].map(([key, at]) => ({ key, value: at })),
      restore(s) {
        seen = new Map(Object.entries(s as Record<string, number>));
      },
      changes() {
        if (!changed) {
          changed = new Map();
          return [];
        }
        const out = [...changed];
        changed.clear();
        return out;
      },
      load(k, v) {
        if (v === null) seen.delete(k);
        else seen.set(k, v as number);
      },
    };
  },
});
