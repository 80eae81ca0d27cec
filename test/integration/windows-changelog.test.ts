// Windows to Kafka on the real stack: events per minute and event type, emitted when the watermark closes a
// window, the open windows kept in the state changelog. The worker is killed -9 in mid-stream twice and
// restarted; the last row of every window must equal counts computed here from the events produced. A record
// later than the allowed lateness lands in the dead letters as a LateEvent, and every window is still as counted
// after the worker that took it (its restore comes after the markers of the one before).
import { type OrderEvent, orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import {
  createTopics,
  freePort,
  hasCommitted,
  killWhenRead,
  ORDER_SCHEMAS,
  ORDER_VALUE,
  produceOrders,
  readTopic,
  restoredEntries,
  spawnWorker,
  stopWorkers,
  testTopics,
  waitForLog,
  writeFixture,
} from './harness.ts';

jest.setTimeout(300_000);
afterEach(stopWorkers);

const MINUTE = 60_000;

const TOPOLOGY = `apiVersion: pipelines/v1
kind: Topology
metadata: { name: order-minutes }
spec:
  source:
    topic: \${ORDERS_TOPIC}
    group: \${GROUP}
    value: ${ORDER_VALUE}
    eventTime: event.timestamp
    maxOutOfOrderness: 5s
  steps:
    - id: minutes
      aggregate:
        window: { tumbling: 1m, allowedLateness: 1m }
        groupBy: { eventType: event.eventType }
        measures: { events: count(), orders: distinct(event.data.orderId) }
  sinks:
    - kafka:
        topic: \${OUT_TOPIC}
        key: "eventType + '@' + string(int(windowStart))"
        value: { format: json }
        exactlyOnce: \${EXACTLY_ONCE:-false}
  errors: { deadLetter: "\${DLQ_TOPIC}" }
`;

test.each([
  ['at least once', 'false'],
  ['exactly once (state in the transaction)', 'true'],
])(
  'windows to Kafka, %s: kill -9 twice, restart from the changelog, every closed window as counted; a late event dead-lettered',
  async (_mode, exactlyOnce) => {
    const topics = testTopics('minutes');
    await createTopics(topics);
    const events = [...orderLifecycleStream(100_000, { seed: 11 })];
    const last = events.reduce((m, e) => Math.max(m, e.timestamp), 0);
    // Events far ahead on every partition move the watermark past the last real minute, so it closes.
    const ticks: OrderEvent[] = Array.from({ length: 30 }, (_, i) => ({
      eventId: `tick-${i}`,
      eventType: 'OrderCancelled',
      timestamp: last + 10 * MINUTE,
      data: { orderId: `TICK-${i}`, reason: 'tick' },
    }));
    await produceOrders(topics, [...events, ...ticks]);

    const want = new Map<string, { events: number; orders: Set<string> }>();
    for (const e of events) {
      const k = `${e.eventType}@${Math.floor(e.timestamp / MINUTE) * MINUTE}`;
      const w = want.get(k) ?? { events: 0, orders: new Set<string>() };
      w.events++;
      w.orders.add(e.data.orderId);
      want.set(k, w);
    }

    const file = writeFixture('order-minutes', TOPOLOGY, ORDER_SCHEMAS);
    const env = {
      ...topics,
      GROUP: `minutes-${Date.now()}`,
      OUT_TOPIC: topics.ENRICHED_TOPIC,
      EXACTLY_ONCE: exactlyOnce,
    };
    const total = events.length + ticks.length;
    // Each kill once the worker has read another 30% of the input by its own count (a restarted worker counts from
    // where it resumes): about 30% and 60% of the whole. (Counting 60% in the second run put its kill near 90%, and
    // a fast run sometimes finished everything first, leaving the last worker nothing to restore.)
    for (const [round, fraction] of [
      [1, 0.3],
      [2, 0.3],
    ] as const) {
      const port = await freePort();
      const w = spawnWorker(file, env, ['--metrics', `127.0.0.1:${port}`], `minutes-kill-${round}`);
      await waitForLog(w, 'partitions assigned');
      const ready = () => hasCommitted(env.GROUP, topics.ORDERS_TOPIC);
      expect(await killWhenRead(w, port, total * fraction, ready)).toBeLessThan(total);
      expect(await w.exited).toBe(null);
    }
    const done = spawnWorker(file, env, ['--until-caught-up'], 'minutes-final');
    expect(await done.exited).toBe(0);
    expect(Math.max(...restoredEntries(done))).toBeGreaterThan(0);

    // The last row of every window as counted here; nothing else emitted (the tick minute is still open).
    const windowsAsCounted = async () => {
      const rows = await readTopic(topics.ENRICHED_TOPIC, { idleMs: 6000, decode: 'raw' });
      const got = new Map<string, { events: number; orders: number }>();
      for (const r of rows) got.set(r.key!, JSON.parse((r.value as Buffer).toString()));
      const wrong = [...want].filter(
        ([k, w]) => got.get(k)?.events !== w.events || got.get(k)?.orders !== w.orders.size,
      );
      const sample = wrong[0] && {
        window: wrong[0][0],
        want: { events: wrong[0][1].events, orders: wrong[0][1].orders.size },
        got: got.get(wrong[0][0]),
      };
      expect({ windows: got.size, wrong: wrong.length, sample }).toEqual({
        windows: want.size,
        wrong: 0,
        sample: undefined,
      });
    };
    await windowsAsCounted();

    // A record behind the watermark by more than the allowed lateness: to the dead letters, counted nowhere.
    const late: OrderEvent = { ...events[0]!, eventId: 'late-1' } as OrderEvent;
    await produceOrders(topics, [late]);
    const again = spawnWorker(file, env, ['--until-caught-up'], 'minutes-late');
    expect(await again.exited).toBe(0);
    const dead = await readTopic(topics.DLQ_TOPIC, { expect: 1, idleMs: 6000, decode: 'raw' });
    expect(dead.map((d) => d.headers['pipelines.dlq.errorClass'])).toEqual(['LateEvent']);
    // That worker restored after the last one's markers: what a kill cut short before them still counts nowhere.
    await windowsAsCounted();
  },
);
