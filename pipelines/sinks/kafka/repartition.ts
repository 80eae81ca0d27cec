// What a `repartition` step becomes on Kafka, in the stage before it: a sink that writes each record's variables
// to the internal topic, keyed anew, with its event time as the record timestamp. Not a kind a topology names
// (compile/stages.ts adds it); the stage after the step reads the topic with the tagged-JSON decoder.
import { z } from 'zod';
import { encodeValue } from '../../codec/decoder.ts';
import { childTraceHeaders, type Headers } from '../../kafka/headers.ts';
import { repartitionKey } from '../../steps/repartition.ts';
import type { Vars } from '../../steps/step.ts';
import { expression } from '../../topology/durations.ts';
import { defineSink } from '../spec.ts';
import { KafkaSink } from './sink.ts';

interface RepartitionRow {
  key: string | null;
  value: Vars;
  time: number;
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
      encode: (row) => {
        const r = row as RepartitionRow;
        const message = { key: r.key, value: encodeValue(r.value), headers: childTraceHeaders(r.headers) };
        // A time Kafka cannot hold (none, negative) leaves the producer's clock in its place.
        return Number.isFinite(r.time) && r.time >= 0 ? { ...message, timestamp: String(Math.round(r.time)) } : message;
      },
    });
  },
});
