// `repartition`: give the records a new key, so that the steps after it see every record of one key on one
// worker. On Kafka the step is a boundary: what comes before it writes the records, keyed, to an internal topic;
// the steps after it read that topic as a consumer group of their own (compile/stages.ts). Offline (and inside
// one plan) it only sets the key: one process already sees every record.
import { z } from 'zod';
import { expression } from '../topology/durations.ts';
import type { CompiledExpression } from '../topology/expressions.ts';
import { nullable, STRING } from '../topology/types.ts';
import { defineStep, type Processor, shortHash, type Vars } from './step.ts';

export const repartition = defineStep({
  kind: 'repartition',
  summary: 'Key the records anew, so that the steps after it see each key on one worker.',
  description:
    'On Kafka the records are written to an internal topic keyed by `key` (`<group>.<step id>.repartition`, ' +
    'created by the worker and by `topics apply`) and the steps after this one read it back as their own ' +
    'consumer group (`<group>.<step id>`) in the same workers: a `fold`, a `dedupe` or an `emit: onClose` ' +
    'window keyed by `key` is then right with any number of workers. The variables pass through unchanged, and ' +
    '`key` becomes the new key (a string). Event time rides along with the variables. With `exactlyOnce` ' +
    '(the default) the write and the offsets of what was read go in one transaction, so nothing is counted twice ' +
    'after a crash; a transaction cannot span ClickHouse, so a ClickHouse sink fed before this step needs ' +
    '`exactlyOnce: false` (at least once through the internal topic).',
  config: z.strictObject({
    key: expression('the new key: records with equal keys reach the same worker'),
    partitions: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe(
        'Partitions of the internal topic (the most workers that share the steps after it); default: those ' +
          'the source topic declares under spec.topics.',
      ),
    exactlyOnce: z
      .boolean()
      .default(true)
      .describe('Write the internal topic in transactions, with the offsets of the records read.'),
  }),
  examples: [{ key: 'segment' }, { key: 'event.data.customerId', partitions: 12 }],
  stateful: false,
  describe: (c) => `by ${c.key}${c.partitions ? `, ${c.partitions} partitions` : ''}`,
  idHint: (c) => shortHash(c.key),
  partitionKeys: (c) => [c.key],
  check(c, ctx) {
    ctx.expr(c.key, ['key']);
    return { ...ctx.scope, key: nullable(STRING) };
  },
  create: (c, ctx) => keyedAnew(ctx.compile(c.key)),
});

/** A step that only gives each record a new key (inside one plan: the internal topic is the stage boundary). */
export function keyedAnew(key: CompiledExpression): Processor {
  return {
    process(vars, rc, out) {
      vars.key = repartitionKey(key.evaluate(vars));
      out.emit(vars, rc);
    },
  };
}

/** The value of a repartition topic's record, as the stage after the step reads it. */
export interface StagedValue {
  /** Event time, epoch ms. */
  time: number;
  vars: Vars;
  /** Which flow of a join or merge it comes from (StepSpec.partitionKeys' order); 0 when absent. */
  input?: number;
}

/** The key a value becomes, as a string (what the internal topic carries and the steps after it read). */
export function repartitionKey(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}
