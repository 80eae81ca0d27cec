// Stateful steps on the real stack: the order-status fold (behind a dedupe) killed -9 in mid-stream twice and
// restarted, its state read back from the changelog topic; the last status of every order must equal a fold
// computed here, independently, from the events produced. A second group replaying the topic from the start
// must end with the very same states (event sourcing: state rebuilt from events).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type OrderEvent, orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import {
  createTopics,
  freePort,
  hasCommitted,
  killWhenRead,
  produceOrders,
  readTopic,
  restoredEntries,
  spawnWorker,
  stopWorkers,
  testTopics,
  waitForLog,
} from './harness.ts';

jest.setTimeout(300_000);
afterEach(stopWorkers);

const TOPOLOGY = 'topologies/order-status.yaml';

interface Status {
  orderId: string;
  status: string;
  customerId: string | null;
  totalAmount: number | null;
  paidAmount: number;
  carrier: string | null;
  cancelReason: string | null;
  events: number;
  updatedAt: number | null;
}

/** The fold of order-status.yaml, written out by hand: the expected state of each order. */
function expectedStates(events: OrderEvent[]): Map<string, Status> {
  const out = new Map<string, Status>();
  const seen = new Set<string>();
  for (const e of events) {
    if (seen.has(e.eventId)) continue; // the dedupe step
    seen.add(e.eventId);
    const id = e.data.orderId;
    const s: Status = out.get(id) ?? {
      orderId: id,
      status: 'NEW',
      customerId: null,
      totalAmount: null,
      paidAmount: 0,
      carrier: null,
      cancelReason: null,
      events: 0,
      updatedAt: null,
    };
    s.events++;
    s.updatedAt = e.timestamp;
    switch (e.eventType) {
      case 'OrderPlaced':
        if (s.status === 'NEW') s.status = 'PLACED';
        s.customerId = e.data.customerId;
        s.totalAmount = e.data.totalAmount;
        break;
      case 'PaymentCaptured':
        if (s.status === 'NEW' || s.status === 'PLACED') s.status = 'PAID';
        s.paidAmount += e.data.amount;
        break;
      case 'OrderShipped':
        if (s.status !== 'CANCELLED') s.status = 'SHIPPED';
        s.carrier = e.data.carrier;
        break;
      case 'OrderCancelled':
        s.status = 'CANCELLED';
        s.cancelReason = e.data.reason;
        break;
    }
    out.set(id, s);
  }
  return out;
}

/** The last value per key of the output (keyed by orderId, so per-key order is partition order). */
async function lastStates(topic: string): Promise<Map<string, Status>> {
  // At least once: an order's states may repeat after a restart; the whole topic is read, the last one counts.
  const out = await readTopic(topic, { idleMs: 6000 });
  const m = new Map<string, Status>();
  for (const r of out) m.set(r.key!, r.value as Status);
  return m;
}

function diff(got: Map<string, Status>, want: Map<string, Status>) {
  const wrong = [...want].filter(([k, v]) => JSON.stringify(got.get(k)) !== JSON.stringify(v));
  return { missing: [...want.keys()].filter((k) => !got.has(k)).length, wrong: wrong.length, sample: wrong[0] };
}

test('order-status: kill -9 twice, restart from the changelog, then a replay from the start: every state as expected', async () => {
  const topics = testTopics('state');
  await createTopics(topics);
  const events = [...orderLifecycleStream(100_000, { seed: 7 })];
  // Redelivered events (a producer retry upstream): the dedupe drops them, across restarts too.
  const redelivered = events.filter((_, i) => i % 97 === 0);
  await produceOrders(topics, [...events, ...redelivered]);
  const want = expectedStates(events);
  const dir = mkdtempSync(join(tmpdir(), 'state-ch-'));
  const group = `state-${Date.now()}`;
  const env = { ...topics, PIPELINES_CLICKHOUSE_PATH: dir };

  const total = events.length + redelivered.length;
  // Each kill once the worker has read another 30% of the input by its own count (a restarted worker counts from
  // where it resumes): about 30% and 60% of the whole. (Counting 60% in the second run put its kill near 90%, and
  // a fast run sometimes finished everything first, leaving the last worker nothing to restore.)
  for (const [round, fraction] of [
    [1, 0.3],
    [2, 0.3],
  ] as const) {
    const port = await freePort();
    const w = spawnWorker(TOPOLOGY, env, ['--group', group, '--metrics', `127.0.0.1:${port}`], `state-kill-${round}`);
    await waitForLog(w, 'partitions assigned');
    // Not before the group's first commit: the changelog holds entries by then (they are sent before it).
    const ready = () => hasCommitted(group, topics.ORDERS_TOPIC);
    expect(await killWhenRead(w, port, total * fraction, ready)).toBeLessThan(total);
    expect(await w.exited).toBe(null);
    if (round === 2) expect(Math.max(...restoredEntries(w))).toBeGreaterThan(0);
  }
  const done = spawnWorker(TOPOLOGY, env, ['--group', group, '--until-caught-up'], 'state-final');
  expect(await done.exited).toBe(0);
  // The final run resumed from restored state, with records still to do (the kills landed in mid-stream).
  expect(Math.max(...restoredEntries(done))).toBeGreaterThan(0);
  const live = await lastStates(topics.STATUS_TOPIC);
  expect(diff(live, want)).toEqual({ missing: 0, wrong: 0, sample: undefined });

  // Event sourcing: a new group from the earliest offsets, to another topic, rebuilds the same states.
  const replayTopic = `${topics.STATUS_TOPIC}.replay`;
  const replay = spawnWorker(
    TOPOLOGY,
    { ...env, STATUS_TOPIC: replayTopic, PIPELINES_CLICKHOUSE_PATH: mkdtempSync(join(tmpdir(), 'state-re-')) },
    ['--group', `${group}-replay`, '--until-caught-up'],
    'state-replay',
  );
  expect(await replay.exited).toBe(0);
  expect(diff(await lastStates(replayTopic), live)).toEqual({ missing: 0, wrong: 0, sample: undefined });
});
