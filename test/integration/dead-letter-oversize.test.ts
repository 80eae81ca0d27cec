// A poison record larger than the dead-letter topic takes must not wedge the topology: it is dead-lettered
// without its value (its size and SHA-256 instead, said in a header), the other dead letters of its batch land
// once, everything else flows, and the offsets move past it.
import { createHash } from 'node:crypto';
import { committedOffsets } from '../../pipelines/kafka/offsets.ts';
import { orderPlacedStream } from '../../pipelines/loadgen/orders.ts';
import { produce } from '../../pipelines/loadgen/produce.ts';
import { DEAD_LETTER_MAX_BYTES } from '../../pipelines/runtime/dead-letter-messages.ts';
import { redriveDeadLetters } from '../../pipelines/runtime/dead-letters.ts';
import {
  createTopics,
  kafkaClient,
  ORDER_SCHEMAS,
  ORDER_VALUE,
  produceOrders,
  readTopic,
  spawnWorker,
  stack,
  stopWorkers,
  testTopics,
  writeFixture,
} from './harness.ts';

jest.setTimeout(180_000);
afterEach(stopWorkers);

const TOPOLOGY = `apiVersion: pipelines/v1
kind: Topology
metadata: { name: oversize, description: Placed orders forwarded as JSON. }
spec:
  source:
    topic: \${ORDERS_TOPIC}
    group: \${GROUP}
    value: ${ORDER_VALUE}
  steps:
    - filter: event.eventType == 'OrderPlaced'
    - map: { orderId: event.data.orderId, total: event.data.totalAmount }
  sinks:
    - kafka: { topic: "\${ENRICHED_TOPIC}", key: orderId, value: { format: json } }
  errors:
    deadLetter: \${DLQ_TOPIC}
`;

test('a 5 MB poison record is dead-lettered without its value; the rest of its batch and the stream go on', async () => {
  const topics = testTopics('oversize');
  const { conn } = stack();
  // The source takes 8 MB records (a producer elsewhere was configured so); the dead-letter topic the default 1 MB.
  const admin = kafkaClient().admin();
  await admin.connect();
  await admin.createTopics({
    topics: [
      {
        topic: topics.ORDERS_TOPIC,
        numPartitions: 1,
        configEntries: [{ name: 'max.message.bytes', value: '8388608' }],
      },
    ],
  });
  await admin.disconnect();
  await createTopics(topics, 1);
  const good = [...orderPlacedStream(200, { seed: 11 })];
  await produceOrders(topics, good.slice(0, 100), [{ key: 'ORD-SMALL-POISON', value: Buffer.from('not avro') }]);
  const huge = Buffer.alloc(5 * 1024 * 1024, 0x61);
  await produce(conn.kafka, topics.ORDERS_TOPIC, [{ key: 'ORD-HUGE', value: huge }], {
    config: { 'message.max.bytes': 8_388_608, 'compression.type': 'none' },
  });
  await produceOrders(topics, good.slice(100), [{ key: 'ORD-SMALL-POISON-2', value: Buffer.from('nor this') }]);

  const group = `oversize-${Date.now()}`;
  const worker = spawnWorker(
    writeFixture('oversize', TOPOLOGY, ORDER_SCHEMAS),
    { ...topics, GROUP: group },
    ['--until-caught-up'],
    'oversize',
  );
  expect(await worker.exited).toBe(0);

  const dead = await readTopic(topics.DLQ_TOPIC, { expect: 3, decode: 'raw' });
  expect(dead.map((d) => d.key).sort()).toEqual(['ORD-HUGE', 'ORD-SMALL-POISON', 'ORD-SMALL-POISON-2']);
  const big = dead.find((d) => d.key === 'ORD-HUGE')!;
  expect(big.value).toBeNull();
  expect(big.headers).toMatchObject({
    'pipelines.dlq.step': 'decode',
    'pipelines.dlq.topic': topics.ORDERS_TOPIC,
    'pipelines.dlq.valueBytes': String(huge.length),
    'pipelines.dlq.valueSha256': createHash('sha256').update(huge).digest('hex'),
  });
  expect(big.headers['pipelines.dlq.valueOmitted']).toContain(
    `larger than a dead letter may be (${DEAD_LETTER_MAX_BYTES})`,
  );
  expect((dead.find((d) => d.key === 'ORD-SMALL-POISON')!.value as Buffer).toString()).toBe('not avro');

  const out = await readTopic(topics.ENRICHED_TOPIC, { expect: good.length, decode: 'raw' });
  expect(out).toHaveLength(good.length);
  const committed = await committedOffsets(conn.kafka, group, topics.ORDERS_TOPIC);
  expect(committed.get(0)).toBe(BigInt(good.length + 3));

  // A redrive sends back what it has, and says what it could not.
  const r = await redriveDeadLetters(conn.kafka, topics.DLQ_TOPIC, { idleMs: 3000 });
  expect(r).toMatchObject({ redriven: 2, skipped: 1, withoutValue: 1 });
});
