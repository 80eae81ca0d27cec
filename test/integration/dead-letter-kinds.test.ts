// Each kind of poison record on the real stack: undecodable bytes, an unknown schema id, an expression that
// fails, and a lookup miss configured to dead-letter. Each lands in the dead-letter topic with its provenance
// headers (and the original bytes) while every other record flows through.
import { readFileSync } from 'node:fs';
import { customerSnapshots, type OrderPlaced, orderPlacedStream } from '../../pipelines/loadgen/orders.ts';
import { openProducer, snapshotEncoder } from '../../pipelines/loadgen/produce.ts';
import {
  createTopics,
  freePort,
  ORDER_SCHEMAS,
  ORDER_VALUE,
  produceOrders,
  produceSnapshots,
  readTopic,
  spawnWorker,
  stack,
  stopWorkers,
  testTopics,
  waitForLog,
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

test("poison on a table's compacted topic: skipped, said and counted; the table keeps each key's last good row", async () => {
  const topics = testTopics('table-poison');
  await createTopics(topics);
  await produceSnapshots(topics);
  const { conn, codec } = stack();
  const customers = customerSnapshots();
  const encode = await snapshotEncoder(codec, topics.CUSTOMERS_TOPIC, 'Customer');
  const newcomer = { customerId: 'C-NEWCOMER', name: 'New', segment: 'smb', country: 'DE' };
  const valid = encode(customers[2]);
  const producer = await openProducer(conn.kafka);
  await producer.send(topics.CUSTOMERS_TOPIC, [
    { key: customers[0]!.customerId, value: Buffer.from('not avro at all') }, // a later, unreadable version
    { key: 'C-UNKNOWN-ID', value: Buffer.from([0, 0x7f, 0x7f, 0x7f, 0x01, 2, 4]) },
    { key: customers[2]!.customerId, value: valid.subarray(0, valid.length >> 1) }, // truncated
    { key: customers[3]!.customerId, value: Buffer.alloc(0) }, // empty, not a tombstone
    { key: Buffer.from([0xff, 0xfe, 0x01]), value: encode(newcomer) }, // a good row under a key that is not UTF-8
  ]);
  await producer.close();
  const template = [...orderPlacedStream(1, { seed: 8 })][0]!;
  const orders = [customers[0]!, customers[2]!, customers[3]!, newcomer].map(
    (c, i): OrderPlaced => ({
      ...template,
      eventId: `evt-table-${i}`,
      data: { ...template.data, orderId: `ORD-T${i}`, customerId: c.customerId },
    }),
  );
  await produceOrders(topics, orders);

  const port = await freePort();
  const worker = spawnWorker(
    writeFixture('table-poison', TOPOLOGY, [...ORDER_SCHEMAS, 'Customer']),
    { ...topics },
    ['--metrics', `127.0.0.1:${port}`],
    'table-poison',
  );
  await waitForLog(worker, 'table caught up');
  const out = await readTopic(topics.ENRICHED_TOPIC, { expect: orders.length, decode: 'raw' });
  const segments = Object.fromEntries(
    out.map((r) => {
      const v = JSON.parse((r.value as Buffer).toString()) as { orderId: string; segment: string };
      return [v.orderId, v.segment];
    }),
  );
  expect(segments).toEqual({
    'ORD-T0': customers[0]!.segment,
    'ORD-T1': customers[2]!.segment,
    'ORD-T2': customers[3]!.segment,
    'ORD-T3': 'smb',
  });
  const skippedCount = async () => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return /^pipelines_table_rows_skipped_total\{[^}]*topic="[^"]*customers"[^}]*\} (\d+)$/m.exec(text)?.[1];
  };
  expect(await skippedCount()).toBe('4');
  // Once caught up, a batch of nothing but an unreadable row is counted too.
  const late = await openProducer(conn.kafka);
  await late.send(topics.CUSTOMERS_TOPIC, [{ key: customers[5]!.customerId, value: Buffer.from('late garbage') }]);
  await late.close();
  const deadline = Date.now() + 20_000;
  while ((await skippedCount()) !== '5' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  expect(await skippedCount()).toBe('5');
  const skipped = readFileSync(worker.log, 'utf8')
    .split('\n')
    .filter((l) => l.includes('table row skipped'))
    .map((l) => JSON.parse(l) as { table: string; offset: string; err: string });
  expect(skipped.map((l) => [l.table, Number(l.offset)])).toEqual(
    [500, 501, 502, 503, 505].map((offset) => ['customers', offset]),
  );
  worker.child.kill('SIGTERM');
  expect(await worker.exited).toBe(0);
  expect(await readTopic(topics.DLQ_TOPIC, { idleMs: 3000, decode: 'raw' })).toEqual([]);
});
