// The worker's send path (pipelines/kafka/produce.ts) on the real broker: a batch lands whole, in order per
// partition, with its keys, headers, chosen partitions and timestamps, and the messages handed in are left as they
// were (a retry sends them again); a batch beyond the producer's queue waits for room; a message the client or the
// broker refuses fails the batch with the client's error.
import { randomBytes } from 'node:crypto';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { type KafkaMessage, sendBatch } from '../../pipelines/kafka/produce.ts';
import { createTopics, kafkaClient, readTopic, testTopics } from './harness.ts';

describe('sendBatch', () => {
  const topics = testTopics('produce');
  let kafka: KafkaJS.Kafka;
  let producer: KafkaJS.Producer;

  beforeAll(async () => {
    await createTopics(topics);
    kafka = kafkaClient(KafkaJS.logLevel.NOTHING);
    // As the worker's (runtime/outputs.ts), with a small message bound for the refusal below.
    producer = kafka.producer({ 'linger.ms': 5, 'enable.idempotence': true, 'message.max.bytes': 10_000 } as never);
    await producer.connect();
  }, 60_000);

  afterAll(() => producer.disconnect());

  test('a batch lands whole and in order, the messages handed in unchanged', async () => {
    const messages: KafkaMessage[] = Array.from({ length: 3000 }, (_, i) => ({
      key: `k${i % 7}`,
      value: Buffer.from(`v${i}`),
      headers: { n: String(i), raw: Buffer.from([i % 256]) },
      ...(i % 7 === 0 ? { partition: 2 } : {}),
      ...(i === 5 ? { timestamp: '1700000000000' } : {}),
    }));
    const before = JSON.stringify(messages);
    await sendBatch(producer, topics.ORDERS_TOPIC, messages.slice(0, 1000));
    await sendBatch(producer, topics.ORDERS_TOPIC, messages.slice(1000));
    expect(JSON.stringify(messages)).toBe(before);

    const read = await readTopic(topics.ORDERS_TOPIC, { expect: 3000, decode: 'raw', idleMs: 5000 });
    expect(read).toHaveLength(3000);
    // Per key, the values in the order sent; the chosen partition kept.
    const byKey = new Map<string, number[]>();
    for (const r of read) {
      const n = Number(r.headers.n);
      expect(String(r.value)).toBe(`v${n}`);
      if (n % 7 === 0) expect(r.partition).toBe(2);
      byKey.set(r.key!, [...(byKey.get(r.key!) ?? []), n]);
    }
    for (const ns of byKey.values()) expect(ns).toEqual([...ns].sort((a, b) => a - b));
    expect(byKey.size).toBe(7);
  }, 60_000);

  test('a message the client refuses fails the batch with its error', async () => {
    const big = { key: 'big', value: Buffer.alloc(50_000) };
    const err = await sendBatch(producer, topics.ORDERS_TOPIC, [{ key: 'a', value: Buffer.from('a') }, big]).then(
      () => undefined,
      (e: { code?: number }) => e,
    );
    expect(err?.code).toBe(10); // MSG_SIZE_TOO_LARGE
  }, 60_000);

  test('a message the broker refuses fails the batch in its delivery report', async () => {
    // The topic takes 2 kB records, the client sends up to 1 MB: the refusal comes back from the broker.
    const topic = `${topics.ORDERS_TOPIC}.small-records`;
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '2000' }] }],
    });
    await admin.disconnect();
    const plain = kafka.producer({ 'linger.ms': 5 } as never);
    await plain.connect();
    try {
      const big = { key: 'big', value: randomBytes(5000) };
      const err = await sendBatch(plain, topic, [{ key: 'a', value: Buffer.from('a') }, big]).then(
        () => undefined,
        (e: { code?: number }) => e,
      );
      expect(err?.code).toBe(10); // MSG_SIZE_TOO_LARGE, from the broker
    } finally {
      await plain.disconnect();
    }
  }, 60_000);

  test("a batch larger than the producer's queue waits for room: all delivered, none twice", async () => {
    // 256 kB of queue for 8 MB of messages: librdkafka refuses (Queue full) most of them at first.
    const small = kafka.producer({ 'linger.ms': 5, 'queue.buffering.max.kbytes': 256 } as never);
    await small.connect();
    try {
      const topic = `${topics.ORDERS_TOPIC}.small-queue`;
      const messages = Array.from({ length: 8000 }, (_, i) => ({ key: `k${i}`, value: Buffer.alloc(1000, i % 256) }));
      await sendBatch(small, topic, messages);
      const read = await readTopic(topic, { expect: 8000, decode: 'raw', idleMs: 5000 });
      expect(new Set(read.map((r) => r.key)).size).toBe(8000);
      expect(read).toHaveLength(8000);
    } finally {
      await small.disconnect();
    }
  }, 60_000);

  test('an empty batch resolves at once', async () => {
    await expect(sendBatch(producer, topics.ORDERS_TOPIC, [])).resolves.toBeUndefined();
  });
});
