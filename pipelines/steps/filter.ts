// `filter`: keep the records for which a CEL condition is true; drop the others.

import { expression } from '../topology/durations.ts';
import { defineStep, shortHash } from './step.ts';

export const filter = defineStep({
  kind: 'filter',
  summary: 'Keep the records for which a condition is true.',
  description:
    'The value is a CEL expression returning a bool, evaluated on the variables at this step. ' +
    'Records for which it is false (or null) are dropped; the variables pass through unchanged.',
  config: expression('condition, true to keep the record').meta({
    examples: ["event.eventType == 'OrderPlaced'"],
  }),
  examples: ["event.eventType == 'OrderPlaced'", 'amount > 100 && segment != "test"'],
  stateful: false,
  describe: (c) => String(c),
  idHint: (c) => shortHash(c),
  check(c, ctx) {
    ctx.expr(c, [], { bool: true });
    return ctx.scope;
  },
  create(c, ctx) {
    const cond = ctx.compile(c);
    return {
      process(vars, rc, out) {
        if (cond.evaluate(vars) === true) out.emit(vars, rc);
      },
    };
  },
});
