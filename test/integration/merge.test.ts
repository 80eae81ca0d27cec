// merge on the real stack: orders, payments and shipments (three topics, 3, 3 and 2 partitions) merged into one
// flow keyed by order, counted per order by a fold that runs after the merge, into a compacted topic written
// exactly once; a worker killed -9 once on the way. The last count of each order is the number of its events.
import { readFileSync } from 'node:fs';
import { produceTimeline, timelineEvents } from '../../pipelines/loadgen/timeline.ts';
import { readTopic, spawnWorker, stack, writeFixture } from './harness.ts';
import { waitFor } from './scale-out.ts';
import { timelineTopics } from './timeline.ts';

const TOPOLOGY = `apiVersion: pipelines/v1
kind: Topology
metadata: { name: order-event-counts }
spec:
  source:
    topic: \${ORDERS_TOPIC}
    group: \${GROUP}
    value: { schemas: [schemas/OrderPlaced-v2.avsc] }
  sources:
    payments: { topic: "\${PAYMENTS_TOPIC}", value: { schemas: [schemas/PaymentCaptured.avsc] } }
    shipments: { topic: "\${SHIPMENTS_TOPIC}", value: { schemas: [schemas/OrderShipped.avsc] } }
  steps:
    - id: all-events
      merge: { with: [payments, shipments], key: event.data.orderId }
    - id: per-order
      fold:
        key: key
        by: event.eventType
        initial: { events: '0' }
        on:
          OrderPlaced: { orderId: key, events: state.events + 1 }
          PaymentCaptured: { orderId: key, events: state.events + 1 }
          OrderShipped: { orderId: key, events: state.events + 1 }
  sinks:
    - kafka: { topic: "\${COUNTS_TOPIC}", key: orderId, value: { format: json }, exactlyOnce: true }
  errors: { deadLetter: "\${DLQ_TOPIC}" }
`;

test('three topics merged by order, a worker killed once: each order counted once per event', async () => {
  const topics = await timelineTopics('merge');
  const { conn, codec } = stack();
  const env = { ...topics, GROUP: `merge-${Date.now()}`, COUNTS_TOPIC: `${topics.ORDERS_TOPIC}.counts` };
  const file = writeFixture('order-event-counts', TOPOLOGY, ['OrderPlaced-v2', 'PaymentCaptured', 'OrderShipped']);
  const events = timelineEvents(3000, { seed: 4 });
  const written = produceTimeline(conn.kafka, codec, topics, events, 3000);
  written.catch(() => {});
  const first = spawnWorker(file, { ...env, PIPELINES_GROUP_INSTANCE_ID: 'merge-0' }, [], 'merge-0');
  await waitFor('the worker to have its partitions', async () =>
    /"msg":"partitions assigned"/.test(readFileSync(first.log, 'utf8')),
  );
  await new Promise((r) => setTimeout(r, 1500));
  first.child.kill('SIGKILL');
  expect(await first.exited).toBeNull();
  await written;
  const last = spawnWorker(file, { ...env, PIPELINES_GROUP_INSTANCE_ID: 'merge-0' }, ['--until-caught-up'], 'merge-1');
  expect(await last.exited).toBe(0);

  const want = new Map<string, number>();
  for (const e of [...events.orders, ...events.payments, ...events.shipments])
    want.set(e.data.orderId, (want.get(e.data.orderId) ?? 0) + 1);
  const total = events.orders.length + events.payments.length + events.shipments.length;
  const out = await readTopic(env.COUNTS_TOPIC, { decode: 'raw', expect: total, idleMs: 10_000 });
  // Each update of an order's count once: 1, 2, ... up to its number of events, none twice, none missing.
  const updates = new Map<string, number[]>();
  for (const r of out) {
    const v = JSON.parse(String(r.value)) as { orderId: string; events: number };
    updates.set(v.orderId, [...(updates.get(v.orderId) ?? []), v.events]);
  }
  const wrong = [...want].filter(
    ([id, n]) => updates.get(id)?.join() !== Array.from({ length: n }, (_, i) => i + 1).join(),
  );
  console.log(`${out.length} updates for ${want.size} orders; ${wrong.length} orders wrong`);
  expect(wrong).toEqual([]);
  expect(out.length).toBe(total);
}, 300_000);
