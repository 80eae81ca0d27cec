// The read models of the example topologies, computed from the generated events alone: a small fold of its own,
// sharing nothing with the steps, so that a run of a topology can be checked against it (`pipelines loadgen
// --expected`). Rows follow the reader's queries of pipelines/sinks/clickhouse/README.md, in their order.
import type { Customer, OrderEvent } from './orders.ts';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();
const cents = (x: number) => Math.round(x * 100) / 100;

export interface ExpectedReadModels {
  revenue_by_segment_1m: Array<{ window_start: string; segment: string; revenue: number; orders: number }>;
  revenue_by_product_1m: Array<{
    window_start: string;
    product_id: string;
    revenue: number;
    quantity: number;
    lines: number;
  }>;
  customer_ltv: Array<{
    customer_id: string;
    orders: number;
    revenue: number;
    first_order_at: string;
    last_order_at: string;
  }>;
  order_funnel: Array<{ hour: string; placed: number; paid: number; shipped: number; cancelled: number }>;
  /** Orders per final status (order_summary has one row per order: counted here, not listed). */
  order_status: Record<string, number>;
}

/** Adds `add` to the row at `key`, made by `init` the first time. */
function bump<R>(rows: Map<string, R>, key: string, init: () => R, add: (r: R) => void): void {
  let row = rows.get(key);
  if (!row) {
    row = init();
    rows.set(key, row);
  }
  add(row);
}

const sorted = <R>(rows: Map<string, R>) =>
  [...rows].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);

export function expectedReadModels(events: Iterable<OrderEvent>, customers: readonly Customer[]): ExpectedReadModels {
  const segmentOf = new Map(customers.map((c) => [c.customerId, c.segment]));
  const bySegment = new Map<string, ExpectedReadModels['revenue_by_segment_1m'][number]>();
  const byProduct = new Map<string, ExpectedReadModels['revenue_by_product_1m'][number]>();
  const ltv = new Map<string, { customer_id: string; orders: number; revenue: number; first: number; last: number }>();
  const orders = new Map<string, { placed?: number; paid?: number; shipped?: number; cancelled?: number }>();
  const first = (o: { [k: string]: number | undefined }, k: string, t: number) => {
    o[k] = Math.min(o[k] ?? t, t);
  };
  for (const e of events) {
    const order = orders.get(e.data.orderId) ?? {};
    orders.set(e.data.orderId, order);
    if (e.eventType === 'PaymentCaptured') first(order, 'paid', e.timestamp);
    if (e.eventType === 'OrderShipped') first(order, 'shipped', e.timestamp);
    if (e.eventType === 'OrderCancelled') first(order, 'cancelled', e.timestamp);
    if (e.eventType !== 'OrderPlaced') continue;
    first(order, 'placed', e.timestamp);
    const minute = Math.floor(e.timestamp / MINUTE) * MINUTE;
    const { customerId, totalAmount, items } = e.data;
    const segment = segmentOf.get(customerId) ?? 'unknown';
    bump(
      bySegment,
      `${minute}|${segment}`,
      () => ({ window_start: iso(minute), segment, revenue: 0, orders: 0 }),
      (r) => {
        r.revenue += totalAmount;
        r.orders++;
      },
    );
    for (const item of items) {
      bump(
        byProduct,
        `${minute}|${item.productId}`,
        () => ({ window_start: iso(minute), product_id: item.productId, revenue: 0, quantity: 0, lines: 0 }),
        (r) => {
          r.revenue += item.price * item.quantity;
          r.quantity += item.quantity;
          r.lines++;
        },
      );
    }
    bump(
      ltv,
      customerId,
      () => ({ customer_id: customerId, orders: 0, revenue: 0, first: e.timestamp, last: e.timestamp }),
      (r) => {
        r.orders++;
        r.revenue += totalAmount;
        r.first = Math.min(r.first, e.timestamp);
        r.last = Math.max(r.last, e.timestamp);
      },
    );
  }
  const funnel = new Map<string, ExpectedReadModels['order_funnel'][number]>();
  const status: Record<string, number> = {};
  for (const o of orders.values()) {
    const s = o.cancelled ? 'CANCELLED' : o.shipped ? 'SHIPPED' : o.paid ? 'PAID' : 'PLACED';
    status[s] = (status[s] ?? 0) + 1;
    if (o.placed === undefined) continue;
    const hour = Math.floor(o.placed / HOUR) * HOUR;
    bump(
      funnel,
      String(hour).padStart(15, '0'),
      () => ({ hour: iso(hour), placed: 0, paid: 0, shipped: 0, cancelled: 0 }),
      (r) => {
        r.placed++;
        if (o.paid !== undefined) r.paid++;
        if (o.shipped !== undefined) r.shipped++;
        if (o.cancelled !== undefined) r.cancelled++;
      },
    );
  }
  return {
    revenue_by_segment_1m: sorted(bySegment).map((r) => ({ ...r, revenue: cents(r.revenue) })),
    revenue_by_product_1m: sorted(byProduct).map((r) => ({ ...r, revenue: cents(r.revenue) })),
    customer_ltv: sorted(ltv).map((r) => ({
      customer_id: r.customer_id,
      orders: r.orders,
      revenue: cents(r.revenue),
      first_order_at: iso(r.first),
      last_order_at: iso(r.last),
    })),
    order_funnel: sorted(funnel),
    order_status: status,
  };
}
