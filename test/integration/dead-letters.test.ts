// The dead-letter tools on the real broker and registry: inspect decodes and shows provenance;
// redrive sends each dead letter back once, with its original key and headers.
import { AvroCodec, RegistryClient } from '../../pipelines/codec/index.ts';
import { connectionsFrom } from '../../pipelines/kafka/connection.ts';
import { deadLetterHeaders } from '../../pipelines/kafka/headers.ts';
import { withAdmin } from '../../pipelines/kafka/offsets.ts';
import { applyTopics } from '../../pipelines/kafka/topics.ts';
import { orderPlacedStream, readSchema } from '../../pipelines/loadgen/orders.ts';
import { inspectDeadLetters, redriveDeadLetters } from '../../pipelines/runtime/dead-letters.ts';
import { kafkaClient } from './harness.ts';

jest.setTimeout(90_000);

test('inspect shows decoded dead letters with provenance; redrive sends them back exactly once', async () => {
  const conn = connectionsFrom(process.env);
  const run = Date.now();
  const source = `dlq.source.${run}`;
  const dlqTopic = `dlq.letters.${run}`;
  const registry = new RegistryClient(conn.registry);
  const encoder = await new AvroCodec({ registry }).encoder(`${source}-value`, readSchema('OrderPlaced'));
  const events = [...orderPlacedStream(5, { seed: run % 1000 })];
  const kafka = kafkaClient();
  await applyTopics(conn.kafka, [{ name: source, partitions: 1, replicas: 1 }], { onlyCreate: true });
  const producer = kafka.producer({ 'linger.ms': 5 } as never);
  await producer.connect();
  const letters = events.map((e, i) => ({
    key: e.data.orderId,
    value: i === 4 ? Buffer.from('not avro at all') : encoder.encode(e),
    headers: deadLetterHeaders(
      {
        topic: source,
        partition: 0,
        offset: String(100 + i),
        timestamp: String(e.timestamp),
        topology: 'test-topology',
        step: i === 4 ? 'decode' : 'enrich-customers',
        errorClass: i === 4 ? 'CodecError' : 'LookupMissError',
        errorMessage: `failure ${i}`,
      },
      { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` },
    ),
  }));
  await producer.send({ topic: dlqTopic, messages: letters });
  await producer.disconnect();

  const seen = await inspectDeadLetters(conn.kafka, registry, dlqTopic, { idleMs: 5000 });
  expect(seen).toHaveLength(5);
  const decoded = seen.filter((l) => !l.decodeError);
  expect(decoded.map((l) => (l.value as { data: { orderId: string } }).data.orderId).sort()).toEqual(
    events
      .slice(0, 4)
      .map((e) => e.data.orderId)
      .sort(),
  );
  expect(seen.find((l) => l.decodeError)?.provenance).toMatchObject({ step: 'decode', errorClass: 'CodecError' });

  const only = await redriveDeadLetters(conn.kafka, dlqTopic, { filterStep: 'enrich-customers', idleMs: 5000 });
  expect(only).toMatchObject({ redriven: 4, skipped: 1, byTopic: { [source]: 4 } });
  const again = await redriveDeadLetters(conn.kafka, dlqTopic, { idleMs: 3000 });
  expect(again.redriven).toBe(0);

  // Independently: the source topic now holds the four records, with their original key and trace header.
  const consumer = kafka.consumer({ 'group.id': `check-${run}`, 'auto.offset.reset': 'earliest' } as never);
  await consumer.connect();
  await consumer.subscribe({ topics: [source] });
  const got: Array<{ key: string; traceparent: string }> = [];
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 20_000);
    void consumer.run({
      eachMessage: async ({ message }) => {
        got.push({ key: message.key!.toString(), traceparent: String(message.headers?.traceparent) });
        if (got.length === 4) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  expect(got.map((g) => g.key).sort()).toEqual(
    events
      .slice(0, 4)
      .map((e) => e.data.orderId)
      .sort(),
  );
  expect(new Set(got.map((g) => g.traceparent))).toEqual(new Set([`00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`]));
});

test('a dead letter whose source topic is gone: redrive says so, creates nothing, and keeps it for --to', async () => {
  const conn = connectionsFrom(process.env);
  const run = Date.now();
  const gone = `dlq.gone.${run}`;
  const elsewhere = `dlq.elsewhere.${run}`;
  const dlqTopic = `dlq.orphans.${run}`;
  await applyTopics(conn.kafka, [{ name: elsewhere, partitions: 1, replicas: 1 }], { onlyCreate: true });
  const kafka = kafkaClient();
  const producer = kafka.producer({ 'linger.ms': 5 } as never);
  await producer.connect();
  const provenance = (offset: number) => ({
    topic: gone,
    partition: 0,
    offset: String(offset),
    timestamp: String(run),
    topology: 'test-topology',
    step: 'decode',
    errorClass: 'CodecError',
    errorMessage: 'failure',
  });
  await producer.send({
    topic: dlqTopic,
    messages: [1, 2].map((i) => ({
      key: `k${i}`,
      value: Buffer.from(`v${i}`),
      headers: deadLetterHeaders(provenance(i), undefined),
    })),
  });
  await producer.disconnect();

  await expect(redriveDeadLetters(conn.kafka, dlqTopic, { idleMs: 3000 })).rejects.toMatchObject({
    code: 'DLQ_TARGET_MISSING',
    message: expect.stringMatching(new RegExp(`go back to ${gone.replace(/\./g, '\\.')}, which does not exist.*--to`)),
  });
  // Not created by the attempt (the local broker creates topics on first write).
  expect(await withAdmin(conn.kafka, (a) => a.listTopics())).not.toContain(gone);
  // Nothing was taken as done: both go where they are told.
  const moved = await redriveDeadLetters(conn.kafka, dlqTopic, { to: elsewhere, idleMs: 3000 });
  expect(moved).toMatchObject({ redriven: 2, byTopic: { [elsewhere]: 2 } });
});
