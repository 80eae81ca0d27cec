// The order read models checked against an independent computation: the raw generated events go into plain
// ClickHouse tables (same engine, no pipeline code on the way), each read model is computed there with SQL,
// and compared with what a reader of the worker's tables gets through the queries documented in
// pipelines/sinks/clickhouse/README.md.

import type { Customer, OrderEvent } from '../../pipelines/loadgen/orders.ts';
import type { ClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';

/** The reader's queries, exactly as documented in pipelines/sinks/clickhouse/README.md (Queries). */
export const QUERIES = {
  order_summary: `SELECT order_id, status, customer_id, total_amount, placed_at, paid_at, shipped_at, cancelled_at, version
FROM order_summary FINAL
ORDER BY order_id`,
  revenue_by_segment_1m: `SELECT window_start, segment, sum(revenue) AS revenue, sum(orders) AS orders
FROM revenue_by_segment_1m
GROUP BY window_start, segment
ORDER BY window_start, segment`,
  revenue_by_product_1m: `SELECT window_start, product_id, sum(revenue) AS revenue, sum(quantity) AS quantity, sum(lines) AS lines
FROM revenue_by_product_1m
GROUP BY window_start, product_id
ORDER BY window_start, product_id`,
  customer_ltv: `SELECT customer_id, sum(orders) AS orders, sum(revenue) AS revenue,
       min(first_order_at) AS first_order_at, max(last_order_at) AS last_order_at
FROM customer_ltv
GROUP BY customer_id
ORDER BY customer_id`,
  order_funnel: `SELECT toStartOfHour(placed_at) AS hour,
       count() AS placed,
       countIf(paid_at IS NOT NULL) AS paid,
       countIf(shipped_at IS NOT NULL) AS shipped,
       countIf(cancelled_at IS NOT NULL) AS cancelled,
       round(paid / placed, 4) AS placed_to_paid,
       round(shipped / paid, 4) AS paid_to_shipped,
       round(avgIf(dateDiff('millisecond', placed_at, paid_at), paid_at IS NOT NULL) / 1000, 3) AS placed_to_paid_s,
       round(avgIf(dateDiff('millisecond', paid_at, shipped_at), shipped_at IS NOT NULL) / 1000, 3) AS paid_to_shipped_s
FROM order_summary FINAL
WHERE placed_at IS NOT NULL
GROUP BY hour
ORDER BY hour`,
} as const;

export type ReadModel = keyof typeof QUERIES;

/** The same read models computed from the raw events only. */
const EXPECTED: Record<ReadModel, string> = {
  order_summary: `SELECT order_id,
       multiIf(countIf(event_type = 'OrderCancelled') > 0, 'CANCELLED', countIf(event_type = 'OrderShipped') > 0, 'SHIPPED',
               countIf(event_type = 'PaymentCaptured') > 0, 'PAID', 'PLACED') AS status,
       anyIf(customer_id, event_type = 'OrderPlaced') AS customer_id,
       anyIf(total_amount, event_type = 'OrderPlaced') AS total_amount,
       minIf(ts, event_type = 'OrderPlaced') AS placed_at,
       if(countIf(event_type = 'PaymentCaptured') > 0, minIf(ts, event_type = 'PaymentCaptured'), NULL) AS paid_at,
       if(countIf(event_type = 'OrderShipped') > 0, minIf(ts, event_type = 'OrderShipped'), NULL) AS shipped_at,
       if(countIf(event_type = 'OrderCancelled') > 0, minIf(ts, event_type = 'OrderCancelled'), NULL) AS cancelled_at,
       toUInt64(toUnixTimestamp64Milli(max(ts))) AS version
FROM raw_events GROUP BY order_id ORDER BY order_id`,
  revenue_by_segment_1m: `SELECT toDateTime(toStartOfMinute(e.ts), 'UTC') AS window_start, if(c.customer_id = '', 'unknown', c.segment) AS segment,
       sum(e.total_amount) AS revenue, count() AS orders
FROM raw_events AS e LEFT JOIN raw_customers AS c ON c.customer_id = e.customer_id
WHERE e.event_type = 'OrderPlaced'
GROUP BY window_start, segment ORDER BY window_start, segment`,
  revenue_by_product_1m: `SELECT toDateTime(toStartOfMinute(ts), 'UTC') AS window_start, item.1 AS product_id,
       sum(item.3 * item.2) AS revenue, sum(item.2) AS quantity, count() AS lines
FROM raw_events ARRAY JOIN items AS item
WHERE event_type = 'OrderPlaced'
GROUP BY window_start, product_id ORDER BY window_start, product_id`,
  customer_ltv: `SELECT customer_id, count() AS orders, sum(total_amount) AS revenue, min(ts) AS first_order_at, max(ts) AS last_order_at
FROM raw_events WHERE event_type = 'OrderPlaced'
GROUP BY customer_id ORDER BY customer_id`,
  order_funnel: `SELECT toStartOfHour(placed_at) AS hour, count() AS placed, countIf(paid_at IS NOT NULL) AS paid,
       countIf(shipped_at IS NOT NULL) AS shipped, countIf(cancelled_at IS NOT NULL) AS cancelled,
       round(paid / placed, 4) AS placed_to_paid, round(shipped / paid, 4) AS paid_to_shipped,
       round(avgIf(dateDiff('millisecond', placed_at, paid_at), paid_at IS NOT NULL) / 1000, 3) AS placed_to_paid_s,
       round(avgIf(dateDiff('millisecond', paid_at, shipped_at), shipped_at IS NOT NULL) / 1000, 3) AS paid_to_shipped_s
FROM (
  SELECT order_id, minIf(ts, event_type = 'OrderPlaced') AS placed_at,
         if(countIf(event_type = 'PaymentCaptured') > 0, minIf(ts, event_type = 'PaymentCaptured'), NULL) AS paid_at,
         if(countIf(event_type = 'OrderShipped') > 0, minIf(ts, event_type = 'OrderShipped'), NULL) AS shipped_at,
         if(countIf(event_type = 'OrderCancelled') > 0, minIf(ts, event_type = 'OrderCancelled'), NULL) AS cancelled_at
  FROM raw_events GROUP BY order_id HAVING countIf(event_type = 'OrderPlaced') > 0
)
GROUP BY hour ORDER BY hour`,
};

/** Which read models each example topology writes. */
export const TOPOLOGY_MODELS: Record<string, ReadModel[]> = {
  'topologies/order-status.yaml': ['order_summary', 'order_funnel'],
  'topologies/order-analytics.yaml': ['revenue_by_segment_1m', 'revenue_by_product_1m', 'customer_ltv'],
};

/** Loads the generated events and customers into raw_events / raw_customers (plain MergeTree). */
export async function loadRawEvents(ch: ClickHouse, events: readonly OrderEvent[], customers: readonly Customer[]) {
  await ch.client.command({ query: 'DROP TABLE IF EXISTS raw_events' });
  await ch.client.command({ query: 'DROP TABLE IF EXISTS raw_customers' });
  await ch.client.command({
    query: `CREATE TABLE raw_events (event_id String, event_type LowCardinality(String), ts DateTime64(3, 'UTC'),
      order_id String, customer_id String, total_amount Decimal(18, 2),
      items Array(Tuple(String, UInt32, Decimal(18, 2)))) ENGINE = MergeTree ORDER BY (order_id, ts)`,
  });
  await ch.client.command({
    query: 'CREATE TABLE raw_customers (customer_id String, segment String) ENGINE = MergeTree ORDER BY customer_id',
  });
  const rows = events.map((e) => {
    const placed = e.eventType === 'OrderPlaced' ? e.data : undefined;
    return [
      e.eventId,
      e.eventType,
      e.timestamp,
      e.data.orderId,
      placed?.customerId ?? '',
      placed?.totalAmount ?? 0,
      (placed?.items ?? []).map((i) => [i.productId, i.quantity, i.price]),
    ];
  });
  for (let i = 0; i < rows.length; i += 50_000) {
    await ch.client.insert({ table: 'raw_events', values: rows.slice(i, i + 50_000), format: 'JSONCompactEachRow' });
  }
  await ch.client.insert({
    table: 'raw_customers',
    values: customers.map((c) => ({ customer_id: c.customerId, segment: c.segment })),
    format: 'JSONEachRow',
  });
}

async function rows(ch: ClickHouse, query: string): Promise<string[]> {
  // Every value as text: Decimal sums, Enum names and times compare exactly.
  const rs = await ch.client.query({ query, format: 'TabSeparated' });
  const text = await rs.text();
  return text.split('\n').filter((l) => l.length > 0);
}

export interface Comparison {
  model: ReadModel;
  rows: number;
  actualRows: number;
  /** Rows a reader sees that the raw events do not give, and rows missing; first few of each. */
  unexpected: string[];
  missing: string[];
}

/** Compares one read model: the documented query on the worker's tables against SQL on the raw events. */
export async function compareReadModel(ch: ClickHouse, model: ReadModel): Promise<Comparison> {
  const [actual, expected] = [await rows(ch, QUERIES[model]), await rows(ch, EXPECTED[model])];
  const want = new Set(expected);
  const got = new Set(actual);
  return {
    model,
    rows: expected.length,
    actualRows: actual.length,
    unexpected: actual.filter((r) => !want.has(r)).slice(0, 5),
    missing: expected.filter((r) => !got.has(r)).slice(0, 5),
  };
}

/** ClickHouse's text values as `pipelines loadgen --expected` writes them: ISO times, numbers, money to the cent. */
function asExpected(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    if (typeof v === 'string' && /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/.test(v)) {
      out[k] = new Date(`${v.replace(' ', 'T')}Z`).toISOString();
    } else if (k === 'revenue') out[k] = Math.round(Number(v) * 100) / 100;
    else if (typeof v === 'string' && /^\d+$/.test(v)) out[k] = Number(v);
    else out[k] = v;
  }
  return out;
}

/** A query's rows in the shape of the load generator's expected read models. */
export async function rowsAsExpected(ch: ClickHouse, query: string): Promise<Record<string, unknown>[]> {
  const rs = await ch.client.query({ query, format: 'JSONEachRow' });
  return ((await rs.json()) as Record<string, unknown>[]).map(asExpected);
}
