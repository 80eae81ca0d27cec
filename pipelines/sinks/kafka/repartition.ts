// What a `repartition`, `join` or `merge` step becomes on Kafka, in each stage before it: a sink that writes each record's variables
// and its event time to the internal topic, keyed anew. Not a kind a topology names (compile/stages.ts adds it);
// the stage after the step reads the topic with the tagged-JSON decoder (runtime/plan.ts takes the time from it).
// The event time rides in the value, not as the record timestamp: a broker refuses a timestamp too far ahead of its
// clock (message.timestamp.after.max.ms, an hour by default since Kafka 4.0), and retention counts by timestamps.
import { z } from 'zod';
import { encodeValue } from '../../codec/decoder.ts';
import { childTraceHeaders, type Headers } from '../../kafka/headers.ts';
import type { KafkaMessage } from '../../kafka/produce.ts';
import { repartitionKey, type StagedValue } from '../../steps/repartition.ts';
import type { Vars } from '../../steps/step.ts';
import { expression } from '../../topology/durations.ts';
import { defineSink } from '../spec.ts';
import { KafkaSink } from './sink.ts';

/** A record of the internal topic: the variables at the step and the event time (see StagedValue). */
export function repartitionMessage(r: RepartitionRow): KafkaMessage {
  const value: StagedValue =
    r.input === undefined ? { time: r.time, vars: r.value } : { time: r.time, vars: r.value, input: r.input };
  return { key: r.key, value: encodeValue(value), headers: childTraceHeaders(r.headers) };
}

export interface RepartitionRow {
  key: string | null;
  value: Vars;
  time: number;
  /** Which flow of a join or a merge this is. */
  input?: number;
  headers?: Readonly<Headers>;
}

export const repartitionSink = defineSink({
  kind: 'repartition',
  summary: 'The internal topic of a repartition step.',
  description: 'Written by the stage before a repartition step; read by the stage after it.',
  config: z.strictObject({
    topic: z.string().min(1),
    key: expression('the new key'),
    exactlyOnce: z.boolean(),
    input: z.number().int().min(0).optional(),
  }),
  examples: [],
  defaultId: (c) => `repartition:${c.topic}`,
  describe: (c) => `topic ${c.topic} by ${c.key}`,
  needs: (c) => ({ topics: [{ name: c.topic, at: [] }] }),
  producer: (c) => (c.exactlyOnce ? 'transactional' : 'idempotent'),
  rebuildable: false,
  check() {},
  create(c, ctx) {
    const key = ctx.compile(c.key);
    return {
      toOutput(vars, rc): RepartitionRow {
        // The source record stays behind (the stage after reads its own); the key travels as the record key.
        const { record: _record, key: _key, ...value } = vars;
        const row: RepartitionRow = { key: repartitionKey(key.evaluate(vars)), value, time: rc.time };
        if (c.input !== undefined) row.input = c.input;
        if (rc.record.headers) row.headers = rc.record.headers;
        return row;
      },
    };
  },
  async build({ id, config }, ctx) {
    return new KafkaSink({
      id,
      topic: config.topic,
      producer: ctx.producer(),
      retry: ctx.retry,
      encode: (row) => repartitionMessage(row as RepartitionRow),
    });
  },
});
