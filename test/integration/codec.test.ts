// The Avro codec on the real stack: Apicurio 3.3.3 (ccompat v7) and Kafka. Subjects and topics are unique per run.

import { randomUUID } from 'node:crypto';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import {
  AvroCodec,
  type CodecError,
  IncompatibleSchemaError,
  parseAvroSchema,
  RegistryClient,
  subjectName,
} from '../../pipelines/codec/index.ts';
import {
  orderCancelled,
  orderPlacedV1,
  orderPlacedV2,
  orderPlacedV3Required,
  orderPlacedV3TypeChange,
  orderShipped,
  placed,
  shipped,
} from '../fixtures/codec/order-events.ts';
import { localStack } from './stack.ts';

jest.setTimeout(60_000);

const stack = localStack();
const run = randomUUID().slice(0, 8);
const registry = new RegistryClient({
  url: stack.registryUrl,
  retry: { initialMs: 100, maxMs: 5_000, maxAttempts: 3 },
});
const kafka = new KafkaJS.Kafka({ kafkaJS: { brokers: stack.brokers, logLevel: KafkaJS.logLevel.NOTHING } });

function fresh(name: string): string {
  return `codec-it-${run}-${name}`;
}

interface Received {
  key: string;
  value: Buffer;
  partition: number;
}

/** Produces the messages in order, then consumes the topic from the beginning until all of them came back. */
async function roundTrip(topic: string, messages: Array<{ key: string; value: Buffer }>): Promise<Received[][]> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });
  await admin.disconnect();
  const producer = kafka.producer({ kafkaJS: { idempotent: true } });
  await producer.connect();
  await producer.send({ topic, messages });
  await producer.disconnect();

  const consumer = kafka.consumer({ kafkaJS: { groupId: `${topic}-reader`, fromBeginning: true } });
  await consumer.connect();
  await consumer.subscribe({ topic });
  const batches: Received[][] = [];
  let count = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${count} of ${messages.length} messages came back`)), 30_000);
    consumer
      .run({
        eachBatch: async ({ batch }) => {
          batches.push(
            batch.messages.map((m) => ({ key: m.key!.toString(), value: m.value!, partition: batch.partition })),
          );
          count += batch.messages.length;
          if (count >= messages.length) {
            clearTimeout(timer);
            resolve();
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return batches;
}

/** What the worker does per batch: prepare once (async), then decode each message synchronously. */
async function decodeBatches(codec: AvroCodec, batches: Received[][]) {
  const out: Array<{ key: string; value: Record<string, unknown>; reader: string | undefined }> = [];
  for (const batch of batches) {
    await codec.prepare(batch.map((m) => m.value));
    for (const m of batch) {
      out.push({
        key: m.key,
        value: codec.decode(m.value) as Record<string, unknown>,
        reader: codec.describe(m.value).readerName,
      });
    }
  }
  return out;
}

describe('compatibility mode discovery (Apicurio 3.3.3 behaviour)', () => {
  it('falls back to the global level for an unknown subject and for a subject without a rule', async () => {
    const subject = fresh('modes-value');
    const global = await registry.getGlobalCompatibility();
    expect(await registry.getSubjectCompatibility(subject)).toBeUndefined(); // 404 for an unknown subject
    const codec = new AvroCodec({ registry });
    const first = await codec.encoder(subject, orderPlacedV1);
    expect(first.check).toMatchObject({ action: 'registered', version: 1, mode: { level: global, source: 'global' } });
    expect(await registry.getSubjectCompatibility(subject)).toBe('NONE'); // Apicurio: NONE means "no rule"

    await registry.setSubjectCompatibility(subject, 'FULL');
    const again = await codec.encoder(subject, orderPlacedV1);
    expect(again.check).toMatchObject({
      action: 'existing',
      schemaId: first.schemaId,
      mode: { level: 'FULL', source: 'subject' },
    });

    await registry.setSubjectCompatibility(subject, 'NONE'); // deletes the rule on Apicurio
    expect(await registry.getSubjectCompatibility(subject)).toBe('NONE');
  });

  it('finds an already registered schema by canonical content (key order and spacing do not matter)', async () => {
    const subject = fresh('canon-value');
    const id = await registry.register(subject, JSON.stringify(orderShipped));
    const { fields, namespace, name, type } = orderShipped;
    const reordered = JSON.stringify({ fields, doc: 'docs do not count', namespace, name, type }, null, 2);
    await expect(registry.lookup(subject, reordered)).resolves.toMatchObject({ id, version: 1 });
    const check = (await new AvroCodec({ registry }).encoder(subject, reordered)).check;
    expect(check).toMatchObject({ action: 'existing', schemaId: id });
    // avsc's export drops logicalType (no logical types are registered), so it is another schema to the registry.
    await expect(
      registry.lookup(subject, JSON.stringify(parseAvroSchema(orderShipped).schema())),
    ).resolves.toBeUndefined();
    await expect(new AvroCodec({ registry }).encoder(subject, parseAvroSchema(orderShipped))).rejects.toMatchObject({
      code: 'INVALID_SCHEMA',
    });
  });

  it('answers is_compatible=false for a no-rule subject although registration accepts anything (quirk)', async () => {
    const subject = fresh('quirk-value');
    await registry.register(subject, JSON.stringify(orderPlacedV1));
    const text = JSON.stringify(orderPlacedV3TypeChange);
    await expect(registry.testCompatibility(subject, text)).resolves.toEqual({ compatible: false, messages: [] });
    // The codec follows the mode (NONE), not that answer: it registers.
    const encoder = await new AvroCodec({ registry }).encoder(subject, orderPlacedV3TypeChange);
    expect(encoder.check).toMatchObject({ action: 'registered', version: 2, mode: { level: 'NONE' } });
  });
});

describe('start-up check of output schemas', () => {
  it('stops an incompatible v3 (type change) under BACKWARD with subject, mode and reasons', async () => {
    const subject = fresh('orders-v3type-value');
    const codec = new AvroCodec({ registry });
    await codec.encoder(subject, orderPlacedV1);
    await registry.setSubjectCompatibility(subject, 'BACKWARD');
    await codec.encoder(subject, orderPlacedV2);
    const error = await codec.encoder(subject, orderPlacedV3TypeChange).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IncompatibleSchemaError);
    expect(error).toMatchObject({
      code: 'INCOMPATIBLE_SCHEMA',
      retriable: false,
      subject,
      mode: "BACKWARD (the subject's level)",
    });
    const message = (error as Error).message;
    expect(message).toContain(`schema for subject "${subject}" is incompatible under BACKWARD`);
    expect(message).toContain(
      'new schema cannot read data written with version 2: cannot read "double" as "string" at data.totalAmount',
    );
    expect(await registry.getVersions(subject)).toEqual([1, 2]); // nothing registered
  });

  it('stops a v3 adding a field without default under BACKWARD, and under FULL_TRANSITIVE names every version', async () => {
    const subject = fresh('orders-v3req-value');
    const codec = new AvroCodec({ registry });
    await codec.encoder(subject, orderPlacedV1);
    await codec.encoder(subject, orderPlacedV2);
    await registry.setSubjectCompatibility(subject, 'BACKWARD');
    const backward = (await codec
      .encoder(subject, orderPlacedV3Required)
      .catch((e: unknown) => e)) as IncompatibleSchemaError;
    expect(backward.reasons).toEqual([
      'new schema cannot read data written with version 2: no matching field for default-less com.orders.events.OrderPlaced.warehouse',
    ]);
    await registry.setSubjectCompatibility(subject, 'FULL_TRANSITIVE');
    const full = (await codec
      .encoder(subject, orderPlacedV3TypeChange)
      .catch((e: unknown) => e)) as IncompatibleSchemaError;
    expect(full.mode).toBe("FULL_TRANSITIVE (the subject's level)");
    expect(full.reasons).toHaveLength(4); // both directions against v1 and v2
  });

  it('with autoRegister off: accepts a registered schema, refuses an unregistered one', async () => {
    const subject = fresh('noauto-value');
    const codec = new AvroCodec({ registry });
    await codec.encoder(subject, orderPlacedV1);
    await expect(codec.encoder(subject, orderPlacedV1, { autoRegister: false })).resolves.toMatchObject({
      check: { action: 'existing' },
    });
    await expect(codec.encoder(subject, orderPlacedV2, { autoRegister: false })).rejects.toMatchObject({
      code: 'SCHEMA_NOT_REGISTERED',
    });
  });

  it('refuses a value that does not match the output schema with INVALID_VALUE', async () => {
    const encoder = await new AvroCodec({ registry }).encoder(fresh('invalid-value'), orderPlacedV2);
    expect(() => encoder.encode({ ...placed(1), timestamp: '2026-01-01' })).toThrow(/timestamp: expected long/);
  });
});

describe('decoding from Kafka', () => {
  it('reads two schema versions interleaved on one topic through the v2 reader and the v1 reader', async () => {
    const topic = fresh('orders-interleaved');
    const subject = subjectName('TopicName', { topic });
    const producerSide = new AvroCodec({ registry });
    const v1 = await producerSide.encoder(subject, orderPlacedV1);
    await registry.setSubjectCompatibility(subject, 'BACKWARD');
    const v2 = await producerSide.encoder(subject, orderPlacedV2);
    expect(v2.schemaId).not.toBe(v1.schemaId);
    const sent = Array.from({ length: 60 }, (_, n) => ({
      key: `ord-${n % 7}`,
      n,
      value: n % 2 === 0 ? v1.encode(placed(n)) : v2.encode(placed(n, { channel: `ch-${n}` })),
    }));
    const batches = await roundTrip(topic, sent);

    const throughV2 = await decodeBatches(new AvroCodec({ registry, readers: [orderPlacedV2] }), batches);
    expect(throughV2).toHaveLength(60);
    for (const { value } of throughV2) {
      const n = Number((value.eventId as string).slice(4));
      expect(value).toEqual({ ...placed(n), channel: n % 2 === 0 ? null : `ch-${n}` });
    }

    const throughV1 = await decodeBatches(new AvroCodec({ registry, readers: [orderPlacedV1] }), batches);
    for (const { value } of throughV1) {
      const n = Number((value.eventId as string).slice(4));
      expect(value).toEqual(placed(n));
    }

    // Every registered version reads through the reader (what a worker checks at start).
    const preload = await new AvroCodec({ registry, readers: [orderPlacedV2] }).preloadSubject(subject);
    expect(preload.map((p) => [p.version, p.schemaId, p.error])).toEqual([
      [1, v1.schemaId, undefined],
      [2, v2.schemaId, undefined],
    ]);
  });

  it('reads several event types on one topic (TopicRecordName subjects), in order per order', async () => {
    const topic = fresh('order-events');
    const producerSide = new AvroCodec({ registry });
    const enc = {
      placed: await producerSide.encoder(
        subjectName('TopicRecordName', { topic, recordName: 'com.orders.events.OrderPlaced' }),
        orderPlacedV2,
      ),
      shipped: await producerSide.encoder(
        subjectName('TopicRecordName', { topic, recordName: 'com.orders.events.OrderShipped' }),
        orderShipped,
      ),
      cancelled: await producerSide.encoder(
        subjectName('TopicRecordName', { topic, recordName: 'com.orders.events.OrderCancelled' }),
        orderCancelled,
      ),
    };
    expect(enc.shipped.subject).toBe(`${topic}-com.orders.events.OrderShipped`);
    const sent: Array<{ key: string; value: Buffer; type: string }> = [];
    for (let n = 0; n < 20; n++) {
      const key = `ord-${String(n).padStart(8, '0')}`;
      sent.push({ key, type: 'OrderPlaced', value: enc.placed.encode(placed(n, { channel: null })) });
      sent.push({ key, type: 'OrderShipped', value: enc.shipped.encode(shipped(n)) });
      if (n % 5 === 0) {
        const event = { eventId: `c-${n}`, eventType: 'OrderCancelled', timestamp: n, data: { orderId: key } };
        sent.push({ key, type: 'OrderCancelled', value: enc.cancelled.encode(event) });
      }
    }
    const batches = await roundTrip(topic, sent);
    const codec = new AvroCodec({ registry, readers: [orderPlacedV2, orderShipped, orderCancelled] });
    const decoded = await decodeBatches(codec, batches);
    expect(decoded).toHaveLength(sent.length);
    const perKey = (list: Array<{ key: string; type: string }>) => {
      const map = new Map<string, string[]>();
      for (const { key, type } of list) map.set(key, [...(map.get(key) ?? []), type]);
      return map;
    };
    expect(perKey(decoded.map((d) => ({ key: d.key, type: d.value.eventType as string })))).toEqual(perKey(sent));
    for (const d of decoded) {
      expect(d.reader).toBe(`com.orders.events.${d.value.eventType}`);
      expect((d.value.data as { orderId: string }).orderId).toBe(d.key);
    }

    // A topology that reads only two of the three types: the third is a typed, non-retriable error.
    const partial = new AvroCodec({ registry, readers: [orderPlacedV2, orderShipped] });
    const all = batches.flat();
    await partial.prepare(all.map((m) => m.value));
    const codes = all.map((m) => {
      try {
        partial.decode(m.value);
        return 'ok';
      } catch (error) {
        return (error as CodecError).code;
      }
    });
    expect(codes.filter((c) => c === 'NO_READER_FOR_RECORD')).toHaveLength(4);
    expect(codes.filter((c) => c === 'ok')).toHaveLength(40);
  });
});

describe('bad messages and registry failures', () => {
  it('gives UNKNOWN_SCHEMA_ID for an id the registry does not know and UNDECODABLE for garbage', async () => {
    const encoder = await new AvroCodec({ registry }).encoder(fresh('bad-value'), orderPlacedV2);
    const good = encoder.encode(placed(1));
    const unknownId = Buffer.from(good);
    unknownId.writeInt32BE(2_000_000_000, 1);
    const garbage = Buffer.concat([good.subarray(0, 5), Buffer.from('not avro at all, just text')]);
    const codec = new AvroCodec({ registry, readers: [orderPlacedV2] });
    await codec.prepare([good, unknownId, garbage, Buffer.from('{"json":true}')]);
    const code = (buf: Buffer) => {
      try {
        codec.decode(buf);
        return 'ok';
      } catch (error) {
        expect(error).toMatchObject({ retriable: false });
        return (error as CodecError).code;
      }
    };
    expect([good, unknownId, garbage, Buffer.from('{"json":true}')].map(code)).toEqual([
      'ok',
      'UNKNOWN_SCHEMA_ID',
      'UNDECODABLE',
      'UNKNOWN_MAGIC_BYTE',
    ]);
  });

  it('is wire-compatible with @kafkajs/confluent-schema-registry both ways', async () => {
    const subject = fresh('interop-value');
    const encoder = await new AvroCodec({ registry }).encoder(subject, orderPlacedV2);
    const ours = encoder.encode(placed(3, { channel: 'web' }));
    await expect(registry.library.decode(ours)).resolves.toMatchObject({ ...placed(3), channel: 'web' });
    const theirs = await registry.library.encode(encoder.schemaId, placed(4, { channel: null }));
    expect(theirs.equals(encoder.encode(placed(4, { channel: null })))).toBe(true);
    const codec = new AvroCodec({ registry, readers: [orderPlacedV1] });
    await codec.prepare([theirs]);
    expect(codec.decode(theirs)).toEqual(placed(4));
  });

  it('reports an unreachable registry as a retriable error from prepare()', async () => {
    const down = new RegistryClient({
      url: 'http://127.0.0.1:9/apis/ccompat/v7',
      retry: { initialMs: 10, maxMs: 5_000, maxAttempts: 2 },
    });
    const codec = new AvroCodec({ registry: down, readers: [orderPlacedV2] });
    const error = await codec.prepare([Buffer.from([0, 0, 0, 0, 1, 2])]).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'REGISTRY_UNAVAILABLE', retriable: true });
    expect((error as Error).message).toMatch(
      /registry unreachable at http:\/\/127\.0\.0\.1:9.*gave up after 2 attempts/,
    );
  });
});
