// The order-timeline example on the real stack, for join-kill.test.ts and join-scale.test.ts: its three topics,
// the orders that move event time past every window, and its read model compared row by row with the timeline
// computed from the generated events alone (loadgen/timeline.ts).
import { applyTopics } from '../../pipelines/kafka/topics.ts';
import type { TimelineEvents, TimelineRow } from '../../pipelines/loadgen/timeline.ts';
import { produceTimeline } from '../../pipelines/loadgen/timeline.ts';
import type { ClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import { stack } from './harness.ts';

/** The customer of the closing orders: not one of the generated ones, left out of the comparison. */
const CLOSING = 'closing';

/** Three source topics of 3, 3 and 2 partitions (a join needs no co-partitioned sources) and a dead-letter topic. */
export async function timelineTopics(name: string) {
  const suffix = `${name}.${Date.now()}.${Math.floor(Math.random() * 1e6)}`;
  const topics = {
    ORDERS_TOPIC: `${suffix}.orders`,
    PAYMENTS_TOPIC: `${suffix}.payments`,
    SHIPMENTS_TOPIC: `${suffix}.shipments`,
    DLQ_TOPIC: `${suffix}.dlq`,
  };
  await applyTopics(stack().conn.kafka, [
    { name: topics.ORDERS_TOPIC, partitions: 3, replicas: 1 },
    { name: topics.PAYMENTS_TOPIC, partitions: 3, replicas: 1 },
    { name: topics.SHIPMENTS_TOPIC, partitions: 2, replicas: 1 },
    { name: topics.DLQ_TOPIC, partitions: 1, replicas: 1 },
  ]);
  return topics;
}

/**
 * Event time moved past every window, in two steps, each followed by `settled` (the stages caught up): orders and
 * payments hours later close every payment window, a week later every shipment window. In one step the paired
 * closers would reach the second join before the unpaid orders the first join lets go in that same batch, which
 * would then be later than their shipment window. Forty order ids: every partition of both internal topics gets
 * some, so that each moves its event time.
 */
export async function closeWindows(
  topics: Awaited<ReturnType<typeof timelineTopics>>,
  t0: number,
  settled: () => Promise<void>,
): Promise<void> {
  const { conn, codec } = stack();
  for (const [at, shipped] of [
    [t0 + 3 * 3_600_000, false],
    [t0 + 7 * 86_400_000, true],
  ] as const) {
    const ids = Array.from({ length: 40 }, (_, i) => `${CLOSING}-${at}-${i}`);
    const events: TimelineEvents = {
      orders: ids.map((orderId) => ({
        eventId: orderId,
        eventType: 'OrderPlaced',
        timestamp: at,
        data: { orderId, customerId: CLOSING, items: [], totalAmount: 1, channel: null },
      })),
      payments: ids.map((orderId) => ({
        eventId: `${orderId}p`,
        eventType: 'PaymentCaptured',
        timestamp: at,
        data: { orderId, paymentId: orderId, amount: 1, method: 'card' },
      })),
      shipments: shipped
        ? ids.map((orderId) => ({
            eventId: `${orderId}s`,
            eventType: 'OrderShipped',
            timestamp: at,
            data: { orderId, carrier: 'dhl', trackingNumber: orderId },
          }))
        : [],
    };
    await produceTimeline(conn.kafka, codec, topics, events);
    await settled();
  }
}

export interface TimelineTally {
  expected: number;
  rows: number;
  /** Rows of an order beyond its first. */
  duplicated: number;
  /** Orders without a row. */
  lost: number;
  /** Rows that differ from the oracle's for their order. */
  wrong: number;
  paid: number;
  shipped: number;
}

/** The order_timeline table against the oracle's rows. */
export async function compareTimeline(engine: ClickHouse, expected: TimelineRow[]): Promise<TimelineTally> {
  const rs = await engine.client.query({
    query: `SELECT order_id, customer_id, toUnixTimestamp64Milli(placed_at) AS placed_at, toString(amount) AS amount,
  toUnixTimestamp64Milli(paid_at) AS paid_at, payment_method, toUnixTimestamp64Milli(shipped_at) AS shipped_at, carrier
FROM order_timeline WHERE customer_id != '${CLOSING}' ORDER BY order_id`,
    format: 'JSONEachRow',
  });
  const rows = (await rs.json()) as Array<Record<string, unknown>>;
  const ms = (v: unknown) => (v === null ? null : Number(v));
  const key = (r: Record<string, unknown>) =>
    JSON.stringify([
      r.order_id,
      r.customer_id,
      ms(r.placed_at),
      Math.round(Number(r.amount) * 100),
      ms(r.paid_at),
      r.payment_method,
      ms(r.shipped_at),
      r.carrier,
    ]);
  const want = new Set(expected.map((r) => key(r as unknown as Record<string, unknown>)));
  const ids = new Set(rows.map((r) => r.order_id));
  // What went wrong, for the next time: every row of an order that has a row the oracle has not.
  const wrongIds = new Set(rows.filter((r) => !want.has(key(r))).map((r) => r.order_id));
  if (wrongIds.size > 0)
    console.log(
      `rows of orders with a wrong row (first 10):\n${rows
        .filter((r) => wrongIds.has(r.order_id))
        .slice(0, 10)
        .map((r) => key(r))
        .join('\n')}`,
    );
  return {
    expected: expected.length,
    rows: rows.length,
    duplicated: rows.length - ids.size,
    lost: expected.filter((r) => !ids.has(r.order_id)).length,
    wrong: rows.filter((r) => !want.has(key(r))).length,
    paid: rows.filter((r) => r.paid_at !== null).length,
    shipped: rows.filter((r) => r.shipped_at !== null).length,
  };
}

/** Every order has one row, equal to the oracle's. */
export function expectExact(tally: TimelineTally, orders: number): void {
  expect({ duplicated: tally.duplicated, lost: tally.lost, wrong: tally.wrong, rows: tally.rows }).toEqual({
    duplicated: 0,
    lost: 0,
    wrong: 0,
    rows: orders,
  });
}
