// The `kafka` sink: records for one topic, with a key expression and an Avro (or JSON) value; built on the
// worker's producer (idempotent, or transactional with `exactlyOnce`).
import type avro from 'avsc';
import { z } from 'zod';
import { subjectName } from '../../codec/subjects.ts';
import { PipelinesError } from '../../errors.ts';
import { childTraceHeaders, type Headers } from '../../kafka/headers.ts';
import type { Vars } from '../../steps/step.ts';
import { loadAvsc } from '../../topology/avro.ts';
import { didYouMean } from '../../topology/diagnostics.ts';
import { expression } from '../../topology/durations.ts';
import { defineSink, sinkCommon } from '../spec.ts';
import { fieldMisfits } from './fields.ts';
import { KafkaSink } from './sink.ts';

export const kafka = defineSink({
  kind: 'kafka',
  summary: 'Records into a Kafka topic (Avro or JSON values).',
  description:
    'Each record becomes one Kafka record: `key` is a CEL expression (null when omitted); the value is the ' +
    "record's fields, projected on the Avro schema when `value.schema` is given (each of its fields must be " +
    'produced by a step, unless it has a default, and hold what flows in: types are checked through nested records, ' +
    'arrays and maps). `exactlyOnce` asks the worker for a transactional producer ' +
    '(offsets committed in the transaction); otherwise the producer is idempotent.',
  config: z.strictObject({
    ...sinkCommon,
    topic: z.string().min(1).describe('Topic to write to.'),
    key: expression('the record key (a string or number)').optional(),
    value: z
      .strictObject({
        format: z.enum(['avro', 'json']).default('avro').describe('Value encoding.'),
        schema: z.string().optional().describe('Avro schema file (.avsc), relative to the topology.'),
        subjects: z
          .enum(['TopicName', 'RecordName', 'TopicRecordName'])
          .default('TopicName')
          .describe('Schema Registry subject name strategy.'),
      })
      .prefault({})
      .describe('How the value is encoded.'),
    headers: z
      .record(z.string().min(1), expression('a header value (converted to a string)'))
      .optional()
      .describe('Headers to set on each record, by name (beside the W3C trace context, which is always carried on).'),
    exactlyOnce: z.boolean().default(false).describe('Transactional writes, offsets committed with them.'),
  }),
  examples: [
    { topic: 'orders.enriched', key: 'orderId', value: { format: 'avro', schema: 'schemas/EnrichedOrder.avsc' } },
    { topic: 'orders.status', key: 'orderId', value: { format: 'json' }, exactlyOnce: true },
    { topic: 'orders.audit', key: 'orderId', value: { format: 'json' }, headers: { 'x-order-status': 'status' } },
  ],
  defaultId: (c) => `kafka:${c.topic}`,
  describe: (c) => `topic ${c.topic}`,
  needs: (c) => ({ topics: [{ name: c.topic, at: ['topic'] }] }),
  producer: (c) => (c.exactlyOnce ? 'transactional' : 'idempotent'),
  rebuildable: false,
  check(c, ctx, scope) {
    if (c.key) ctx.expr(c.key, ['key'], { scope });
    for (const [name, e] of Object.entries(c.headers ?? {})) ctx.expr(e, ['headers', name], { scope });
    if (c.value.format === 'avro' && !c.value.schema) {
      ctx.report(
        'schema-missing-key',
        'an avro value needs `schema`',
        ['value'],
        'add value.schema: schemas/X.avsc, or format: json',
      );
    }
    if (!c.value.schema) return;
    const file = ctx.file(c.value.schema, ['value', 'schema']);
    if (!file) return;
    try {
      const s = loadAvsc(file);
      if (s.fieldType.kind !== 'record') return;
      const fields = Object.keys(scope);
      for (const f of (s.type as avro.types.RecordType).fields) {
        const flows = scope[f.name];
        if (flows) {
          for (const m of fieldMisfits(f.type, flows, f.name))
            ctx.report(m.code, m.message, ['value', 'schema'], m.hint);
        } else if (f.defaultValue() === undefined) {
          ctx.report(
            'sink-unknown-column',
            `field '${f.name}' of ${s.name} is not produced by any step`,
            ['value', 'schema'],
            didYouMean(f.name, fields),
          );
        }
      }
    } catch (err) {
      ctx.report('ref-schema-invalid', `invalid Avro schema: ${(err as Error).message}`, ['value', 'schema']);
    }
  },
  create(c, ctx) {
    const key = c.key ? ctx.compile(c.key) : undefined;
    const headers = Object.entries(c.headers ?? {}).map(([name, e]) => [name, ctx.compile(e)] as const);
    const schema = c.value.schema ? loadAvsc(ctx.file(c.value.schema)) : undefined;
    const names = (schema?.type as unknown as { fields?: { name: string }[] } | undefined)?.fields?.map((f) => f.name);
    return {
      topic: c.topic,
      exactlyOnce: c.exactlyOnce,
      format: c.value.format,
      subjects: c.value.subjects,
      /** The avsc type of the value, for the producer to encode with. */
      valueType: schema?.type,
      /** The value schema as written in its .avsc file, for the registry. */
      valueSchema: schema?.json,
      toOutput(vars: Vars, rc): KafkaRow {
        // Right after the source (no map yet), the variables are event/key/record: the value is the event.
        const fields = vars.record === rc.record && 'event' in vars ? (vars.event as Vars) : vars;
        let value: Record<string, unknown> = fields;
        if (names) {
          value = {};
          for (const n of names) if (fields[n] !== undefined) value[n] = fields[n];
        } else value = { ...fields };
        const out: KafkaRow = {
          key: key ? key.evaluate(vars) : null,
          value,
        };
        // The input's headers ride along so the producer can continue its trace (W3C traceparent).
        if (rc.record.headers) out.headers = rc.record.headers;
        if (headers.length > 0) {
          out.set = {};
          for (const [name, e] of headers) {
            const v = e.evaluate(vars);
            if (v !== null && v !== undefined) out.set[name] = String(v);
          }
        }
        return out;
      },
    };
  },
  async build({ id, config, writer }, ctx) {
    let encodeValue: (v: unknown) => Buffer;
    if (writer.format === 'avro') {
      if (!writer.valueSchema) throw new PipelinesError('CONFIG', `sink ${id}: an Avro value needs value.schema`);
      const recordName = (writer.valueType as { name?: string } | undefined)?.name;
      const subject = subjectName(writer.subjects, { topic: config.topic, recordName, kind: 'value' });
      const encoder = await ctx.encoder(subject, writer.valueSchema);
      encodeValue = (v) => encoder.encode(v);
    } else {
      encodeValue = (v) => Buffer.from(JSON.stringify(v));
    }
    return new KafkaSink({
      id,
      topic: config.topic,
      producer: ctx.producer(),
      retry: ctx.retry,
      encode: (row) => {
        const r = row as KafkaRow;
        return {
          key: r.key === null || r.key === undefined ? null : String(r.key),
          value: encodeValue(r.value),
          headers: r.set ? { ...childTraceHeaders(r.headers), ...r.set } : childTraceHeaders(r.headers),
        };
      },
    });
  },
});

/** What the kafka sink's writer makes of one record. */
interface KafkaRow {
  key: unknown;
  value: unknown;
  headers?: Readonly<Headers>;
  /** The sink's own `headers`, evaluated. */
  set?: Record<string, string>;
}
