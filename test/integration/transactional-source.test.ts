// A source topic written in transactions (the output of another exactly-once worker) ends with a commit marker: a
// group that has processed every record stays committed one short of the end. On the real broker: the probe tells
// markers from records, and `pipelines run --until-caught-up` stops at the end instead of waiting for ever.
import { committedOffsets, endOffsets, partitionsWithRecords } from '../../pipelines/kafka/offsets.ts';
import { orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import { orderEventEncoder } from '../../pipelines/loadgen/produce.ts';
import { createTopics, kafkaClient, readTopic, spawnWorker, stack, stopWorkers, testTopics } from './harness.ts';

jest.setTimeout(120_000);
afterEach(stopWorkers);

test('a topic written in transactions: read to its end, then --until-caught-up stops', async () => {
  const topics = testTopics('tx-source');
  await createTopics(topics);
  const { conn, codec } = stack();
  const encode = await orderEventEncoder(codec, topics.ORDERS_TOPIC);
  const events = [...orderLifecycleStream(2000, { seed: 7 })];
  const kafka = kafkaClient();
  const producer = kafka.producer({ 'transactional.id': `tx-source-${Date.now()}` } as never);
  await producer.connect();
  for (let i = 0; i < events.length; i += 500) {
    const tx = await producer.transaction();
    await tx.send({
      topic: topics.ORDERS_TOPIC,
      messages: events.slice(i, i + 500).map((e) => ({ key: e.data.orderId, value: encode(e) })),
    });
    await tx.commit();
  }
  await producer.disconnect();

  const ends = await endOffsets(conn.kafka, topics.ORDERS_TOPIC);
  const all = new Map([...ends.keys()].map((p) => [p, 0n]));
  expect(await partitionsWithRecords(conn.kafka, topics.ORDERS_TOPIC, all, ends)).toEqual(new Set(ends.keys()));
  // One short of each end is the last transaction's marker: no record there.
  const markers = new Map([...ends].map(([p, end]) => [p, end - 1n]));
  expect(await partitionsWithRecords(conn.kafka, topics.ORDERS_TOPIC, markers, ends)).toEqual(new Set());

  const group = `tx-source-${Date.now()}`;
  const w = spawnWorker('topologies/order-forward.yaml', { ...topics, TOTALS_TOPIC: topics.ENRICHED_TOPIC }, [
    '--group',
    group,
    '--until-caught-up',
  ]);
  expect(await w.exited).toBe(0);
  const committed = await committedOffsets(conn.kafka, group, topics.ORDERS_TOPIC);
  for (const [p, end] of ends) expect(committed.get(p)).toBe(end - 1n);
  const placed = events.filter((e) => e.eventType === 'OrderPlaced').length;
  expect((await readTopic(topics.ENRICHED_TOPIC, { expect: placed, idleMs: 5000 })).length).toBe(placed);
});
