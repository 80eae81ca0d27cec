// `merge`: one flow from several (sources, or steps' outputs), each record passing through as it is. On Kafka the
// flows are written to one internal topic keyed by `key` and read by the merge's own stage (compile/stages.ts), so
// that the steps after it see every record of one key on one worker, whichever topic it came from.
import { z } from 'zod';
import { expression } from '../topology/durations.ts';
import type { FieldType, Scope } from '../topology/types.ts';
import { mergeTypes, nullable, STRING } from '../topology/types.ts';
import { keyedAnew } from './repartition.ts';
import { defineStep, shortHash } from './step.ts';

export const merge = defineStep({
  kind: 'merge',
  summary: 'One flow from this one and other sources or steps, keyed anew.',
  description:
    'The records of this flow and of each flow in `with` (sources under spec.sources, or ids of earlier steps) ' +
    'go on as one flow, in the order they come. The variables after it are those every flow has, each typed ' +
    'over all of them (an `event` of several types, as a topic with several schemas has); `key` becomes `key` ' +
    'evaluated on each record (default: the record key), a string. On Kafka the flows are written to one ' +
    'internal topic keyed by it (`<group>.<step id>.repartition`), read by the merge as its own consumer group, ' +
    'so the steps after it are right with any number of workers.',
  config: z.strictObject({
    with: z.array(z.string().min(1)).min(1).describe('The other flows: sources under spec.sources, or step ids.'),
    key: expression('the key of the merged records, evaluated on each flow').default('key'),
    partitions: z.number().int().min(1).optional().describe('Partitions of the internal topic; default: the source’s.'),
    exactlyOnce: z
      .boolean()
      .default(true)
      .describe('Write the internal topic in transactions, with the offsets of the records read.'),
  }),
  examples: [{ with: ['payments', 'shipments'], key: 'event.data.orderId' }],
  stateful: false,
  describe: (c) => `with ${c.with.join(', ')} by ${c.key}`,
  idHint: (c) => shortHash(c.with.join(',')),
  inputs: (c) => c.with,
  partitionKeys: (c) => [c.key, ...c.with.map(() => c.key)],
  check(c, ctx) {
    ctx.expr(c.key, ['key']);
    for (const scope of ctx.inputs) ctx.expr(c.key, ['key'], { scope });
    const all = [ctx.scope, ...ctx.inputs];
    const out: Scope = {};
    for (const name of Object.keys(ctx.scope)) {
      const types = all.map((s) => s[name]);
      if (types.some((t) => t === undefined)) continue;
      out[name] = (types as FieldType[]).reduce(mergeTypes);
    }
    return { ...out, key: nullable(STRING) };
  },
  create: (c, ctx) => keyedAnew(ctx.compile(c.key)),
});
