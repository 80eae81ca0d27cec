// `map`: project and compute fields; its output is exactly the fields it names.
import { z } from 'zod';
import { expression, identifier } from '../topology/durations.ts';
import type { Scope } from '../topology/types.ts';
import { DYN } from '../topology/types.ts';
import { defineStep, shortHash, type Vars } from './step.ts';

export const map = defineStep({
  kind: 'map',
  summary: 'Project and compute fields: the record becomes exactly the fields named here.',
  description:
    'Each key is an output field, each value a CEL expression on the variables at this step. ' +
    'After a `map`, later steps and sinks see only these fields, as top-level variables ' +
    '(write `event: event` to carry the whole event along).',
  config: z
    .record(identifier(), expression('the value of the field'))
    .refine((r) => Object.keys(r).length > 0, 'a map needs at least one field')
    .meta({ examples: [{ orderId: 'event.data.orderId', amount: 'event.data.totalAmount' }] }),
  examples: [{ orderId: 'event.data.orderId', amount: 'event.data.totalAmount', at: 'event.timestamp' }],
  stateful: false,
  describe: (c) => Object.keys(c).join(', '),
  idHint: (c) => shortHash(Object.keys(c).join(',')),
  check(c, ctx) {
    const out: Scope = {};
    for (const [name, src] of Object.entries(c)) out[name] = ctx.expr(src, [name]) ?? DYN;
    return out;
  },
  create(c, ctx) {
    const names = Object.keys(c);
    const exprs = names.map((n) => ctx.compile(c[n]!));
    const n = names.length;
    return {
      process(vars, rc, out) {
        const next: Vars = {};
        for (let i = 0; i < n; i++) next[names[i]!] = exprs[i]!.evaluate(vars);
        out.emit(next, rc);
      },
    };
  },
});
