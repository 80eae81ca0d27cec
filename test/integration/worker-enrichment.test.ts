// order-enrichment as a real worker: Avro in (several event types, two OrderPlaced versions), tables from
// compacted topics, transactional Kafka out, poison records to the dead-letter topic with provenance.

import { readFileSync } from 'node:fs';
import { subjectName } from '../../pipelines/codec/index.ts';
import {
  customerSnapshots,
  type OrderPlaced,
  orderLifecycleStream,
  productSnapshots,
} from '../../pipelines/loadgen/orders.ts';
import { produce } from '../../pipelines/loadgen/produce.ts';
import { createTopics, produceOrders, produceSnapshots, readTopic, spawnWorker, stack, testTopics } from './harness.ts';

jest.setTimeout(180_000);

test('enriches every order line exactly once and dead-letters poison records with their provenance', async () => {
  const topics = testTopics('enrich');
  await createTopics(topics);
  await produceSnapshots(topics);
  const events = [...orderLifecycleStream(400, { seed: 11 })];
  const poison = [
    { key: 'poison-1', value: Buffer.from('definitely not avro') },
    { key: 'poison-2', value: Buffer.from([0, 0, 0, 0x7f, 0x7f, 1, 2, 3]) }, // unknown schema id
  ];
  await produceOrders(topics, events, poison);
  // Newer producers write OrderPlaced v2 (an optional `channel`) to the same subject, interleaved with v1.
  const { conn, codec } = stack();
  const v2 = await codec.encoder(
    subjectName('TopicRecordName', { topic: topics.ORDERS_TOPIC, recordName: 'com.orders.events.OrderPlaced' }),
    JSON.parse(readFileSync('topologies/schemas/OrderPlaced-v2.avsc', 'utf8')),
  );
  const newer = [...orderLifecycleStream(400, { seed: 12 })]
    .filter((e): e is OrderPlaced => e.eventType === 'OrderPlaced')
    .slice(0, 60)
    .map((e) => ({
      ...e,
      eventId: `${e.eventId}-v2`,
      data: { ...e.data, orderId: `V2-${e.data.orderId}`, channel: 'web' },
    }));
  await produce(
    conn.kafka,
    topics.ORDERS_TOPIC,
    newer.map((e) => ({ key: e.data.orderId, value: v2.encode(e) })),
  );

  const worker = spawnWorker('topologies/order-enrichment.yaml', { ...topics }, ['--until-caught-up'], 'enrich');
  expect(await worker.exited).toBe(0);

  // Independent expectation: every line of every placed order, joined by hand with the snapshots.
  const customers = new Map(customerSnapshots().map((c) => [c.customerId, c]));
  const products = new Map(productSnapshots().map((p) => [p.productId, p]));
  const placed = [...events.filter((e): e is OrderPlaced => e.eventType === 'OrderPlaced'), ...newer];
  const expected = placed.flatMap((e) =>
    e.data.items.map((item, line) => ({
      key: `${e.data.orderId}/${line}`,
      channel: (e.data as { channel?: string }).channel ?? null,
      segment: customers.get(e.data.customerId)!.segment,
      category: products.get(item.productId)!.category,
      lineTotal: item.price * item.quantity,
    })),
  );
  const out = await readTopic(topics.ENRICHED_TOPIC, { expect: expected.length, idleMs: 10_000 });
  const got = out.map((r) => {
    const v = r.value as {
      orderId: string;
      line: number;
      segment: string;
      category: string;
      lineTotal: number;
      channel: string | null;
    };
    return {
      key: `${v.orderId}/${v.line}`,
      segment: v.segment,
      category: v.category,
      lineTotal: v.lineTotal,
      channel: v.channel,
    };
  });
  expect(got.length).toBe(expected.length);
  const byKey = new Map(got.map((g) => [g.key, g]));
  expect(byKey.size).toBe(expected.length); // no duplicates
  for (const e of expected) {
    const g = byKey.get(e.key)!;
    expect(g.segment).toBe(e.segment);
    expect(g.category).toBe(e.category);
    expect(g.lineTotal).toBeCloseTo(e.lineTotal, 9);
    expect(g.channel).toBe(e.channel); // v1 events read through the v2 reader get the default
  }
  // Trace context continues from input to output.
  expect(out.every((r) => /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/.test(r.headers.traceparent ?? ''))).toBe(true);

  const dead = await readTopic(topics.DLQ_TOPIC, { expect: 2, decode: 'raw' });
  expect(dead.map((d) => d.key).sort()).toEqual(['poison-1', 'poison-2']);
  for (const d of dead) {
    expect(d.headers).toMatchObject({
      'pipelines.dlq.topic': topics.ORDERS_TOPIC,
      'pipelines.dlq.topology': 'order-enrichment',
      'pipelines.dlq.step': 'decode',
    });
    expect(d.headers['pipelines.dlq.offset']).toMatch(/^\d+$/);
    expect(d.headers['pipelines.dlq.errorClass']).toMatch(
      /UNKNOWN_SCHEMA_ID|UNKNOWN_MAGIC_BYTE|TRUNCATED_MESSAGE|UNDECODABLE/,
    );
  }
  expect(dead.find((d) => d.key === 'poison-2')!.headers['pipelines.dlq.errorClass']).toBe('UNKNOWN_SCHEMA_ID');
});
