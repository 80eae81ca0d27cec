// Each kind of poison record on the real stack: undecodable bytes, an unknown schema id, an expression that
// fails, and a lookup miss configured to dead-letter. Each lands in the dead-letter topic with its provenance
// headers (and the original bytes) while every other record flows through.
import { customerSnapshots, type OrderPlaced, orderPlacedStream } from '../../pipelines/loadgen/orders.ts';
import {
  createTopics,
  ORDER_SCHEMAS,
  ORDER_VALUE,
  produceOrders,
  produceSnapshots,
  readTopic,
  spawnWorker,
  stopWorkers,
  testTopics,
  writeFixture,
} from './harness.ts';

jest.setTimeout(180_000);
afterEach(stopWorkers);

// Average cents per item: an integer division, which fails (division by zero) for an order without items.
const TOPOLOGY = `apiVersion: pipelines/v1
kind: Topology
metadata: { name: poison-kinds, description: Orders averaged per item and joined with their customer. }
spec:
  source:
    topic: \${ORDERS_TOPIC}
    group: poison-kinds
    value: ${ORDER_VALUE}
  tables:
    customers: { topic: "\${CUSTOMERS_TOPIC}", key: customerId, schema: schemas/Customer.avsc }
  steps:
    - id: per-item
      filter: event.eventType == 'OrderPlaced'
    - id: average
      map:
        orderId: event.data.orderId
        customerId: event.data.customerId
        centsPerItem: int(event.data.totalAmount * 100.0) / size(event.data.items)
    - id: customer
      enrich: { table: customers, key: customerId, as: customer, onMissing: deadLetter }
    - id: out
      map: { orderId: orderId, segment: customer.segment, centsPerItem: centsPerItem }
  sinks:
    - kafka: { topic: "\${ENRICHED_TOPIC}", key: orderId, value: { format: json } }
  errors:
    deadLetter: \${DLQ_TOPIC}
`;

test('every kind of poison record is dead-lettered with its provenance; the rest flows', async () => {
  const topics = testTopics('poison');
  await createTopics(topics);
  await produceSnapshots(topics);
  const known = new Set(customerSnapshots().map((c) => c.customerId));
  const good = [...orderPlacedStream(300, { seed: 5 })];
  const template = good[0]!;
  const noItems: OrderPlaced = {
    ...template,
    eventId: 'evt-no-items',
    data: { ...template.data, orderId: 'ORD-NO-ITEMS', items: [], totalAmount: 0 },
  };
  const stranger: OrderPlaced = {
    ...template,
    eventId: 'evt-stranger',
    data: { ...template.data, orderId: 'ORD-STRANGER', customerId: 'CUST-NOBODY' },
  };
  expect(known.has('CUST-NOBODY')).toBe(false);
  await produceOrders(
    topics,
    [...good.slice(0, 150), noItems, stranger, ...good.slice(150)],
    [
      { key: 'ORD-GARBAGE', value: Buffer.from('definitely not avro') },
      { key: 'ORD-UNKNOWN-ID', value: Buffer.from([0, 0, 0, 0x7f, 0x7f, 1, 2, 3]) },
    ],
  );

  const worker = spawnWorker(
    writeFixture('poison-kinds', TOPOLOGY, [...ORDER_SCHEMAS, 'Customer']),
    { ...topics },
    ['--until-caught-up'],
    'poison',
  );
  expect(await worker.exited).toBe(0);

  const dead = await readTopic(topics.DLQ_TOPIC, { expect: 4, decode: 'raw' });
  const byKey = new Map(dead.map((d) => [d.key, d.headers]));
  expect([...byKey.keys()].sort()).toEqual(['ORD-GARBAGE', 'ORD-NO-ITEMS', 'ORD-STRANGER', 'ORD-UNKNOWN-ID']);
  expect(byKey.get('ORD-GARBAGE')).toMatchObject({ 'pipelines.dlq.step': 'decode' });
  expect(byKey.get('ORD-UNKNOWN-ID')).toMatchObject({
    'pipelines.dlq.step': 'decode',
    'pipelines.dlq.errorClass': 'UNKNOWN_SCHEMA_ID',
  });
  expect(byKey.get('ORD-NO-ITEMS')!['pipelines.dlq.step']).toBe('average');
  expect(byKey.get('ORD-NO-ITEMS')!['pipelines.dlq.errorMessage']).toMatch(/divi/i);
  expect(byKey.get('ORD-STRANGER')!['pipelines.dlq.step']).toBe('customer');
  expect(byKey.get('ORD-STRANGER')!['pipelines.dlq.errorMessage']).toContain('CUST-NOBODY');
  for (const h of byKey.values()) {
    expect(h).toMatchObject({ 'pipelines.dlq.topic': topics.ORDERS_TOPIC, 'pipelines.dlq.topology': 'poison-kinds' });
    expect(h['pipelines.dlq.offset']).toMatch(/^\d+$/);
  }
  // The original bytes are kept: the Avro records still carry the Confluent magic byte.
  expect((dead.find((d) => d.key === 'ORD-STRANGER')!.value as Buffer)[0]).toBe(0);

  // Every other order went through, each once.
  const out = await readTopic(topics.ENRICHED_TOPIC, { expect: good.length, decode: 'raw' });
  const ids = out.map((r) => (JSON.parse((r.value as Buffer).toString()) as { orderId: string }).orderId);
  expect(ids.sort()).toEqual(good.map((e) => e.data.orderId).sort());
});
