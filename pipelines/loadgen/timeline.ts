// Orders, payments and shipments on three topics (the order-timeline example), seeded, and the order timeline
// they give: computed here from the events alone, by the rules of the topology's two left joins (a payment
// within 30 minutes of its order; a shipment within 2 days of the payment, or of the order when unpaid).
import { type AvroCodec, subjectName } from '../codec/index.ts';
import type { KafkaConnection } from '../kafka/connection.ts';
import type { OrderPlaced, OrderShipped, PaymentCaptured } from './orders.ts';
import { customerId, readSchema, seededRandom } from './orders.ts';
import { openProducer } from './produce.ts';

export const PAY_WITHIN_MS = 30 * 60_000;
export const SHIP_WITHIN_MS = 2 * 86_400_000;

export interface TimelineEvents {
  orders: OrderPlaced[];
  payments: PaymentCaptured[];
  shipments: OrderShipped[];
}

export interface TimelineOptions {
  seed?: number;
  /** Event time of the first order, epoch ms. */
  start?: number;
  /** Event time the orders spread over (they come in time order, a topic each). */
  span?: number;
  customers?: number;
}

/**
 * `count` orders spread over `span` of event time; 90% get a payment from a minute before to 40 minutes after
 * (a quarter too late to join), 80% a shipment up to 3 days after (a third too late). Each topic in time order.
 */
export function timelineEvents(count: number, o: TimelineOptions = {}): TimelineEvents {
  const rnd = seededRandom(o.seed ?? 7);
  const start = o.start ?? Date.UTC(2026, 0, 1);
  const span = o.span ?? 10 * 60_000;
  const out: TimelineEvents = { orders: [], payments: [], shipments: [] };
  for (let i = 0; i < count; i++) {
    const orderId = `T${String(i).padStart(7, '0')}`;
    const placed = start + Math.floor((i * span) / count);
    const amount = Math.round(rnd() * 50_000) / 100;
    out.orders.push({
      eventId: `${orderId}:placed`,
      eventType: 'OrderPlaced',
      timestamp: placed,
      data: {
        orderId,
        customerId: customerId(Math.floor(rnd() * (o.customers ?? 500))),
        items: [],
        totalAmount: amount,
        channel: null,
      },
    });
    let after = placed;
    if (rnd() < 0.9) {
      const paid = placed + Math.floor(-60_000 + rnd() * 41 * 60_000);
      out.payments.push({
        eventId: `${orderId}:paid`,
        eventType: 'PaymentCaptured',
        timestamp: paid,
        data: { orderId, paymentId: `P${i}`, amount, method: rnd() < 0.7 ? 'card' : 'transfer' },
      });
      if (Math.abs(paid - placed) <= PAY_WITHIN_MS) after = Math.max(placed, paid);
    }
    if (rnd() < 0.8)
      out.shipments.push({
        eventId: `${orderId}:shipped`,
        eventType: 'OrderShipped',
        timestamp: after + Math.floor(rnd() * 3 * 86_400_000),
        data: { orderId, carrier: rnd() < 0.5 ? 'dhl' : 'ups', trackingNumber: `Z${i}` },
      });
  }
  for (const list of [out.payments, out.shipments]) list.sort((a, b) => a.timestamp - b.timestamp);
  return out;
}

/** One row of the order_timeline read model. */
export interface TimelineRow {
  order_id: string;
  customer_id: string;
  placed_at: number;
  amount: number;
  paid_at: number | null;
  payment_method: string | null;
  shipped_at: number | null;
  carrier: string | null;
}

/** The timeline the two left joins give: one row per order. */
export function expectedTimeline(e: TimelineEvents): TimelineRow[] {
  const payments = groupBy(e.payments);
  const shipments = groupBy(e.shipments);
  return e.orders.map((o) => {
    const paid = (payments.get(o.data.orderId) ?? []).find((p) => Math.abs(p.timestamp - o.timestamp) <= PAY_WITHIN_MS);
    const at = paid ? Math.max(paid.timestamp, o.timestamp) : o.timestamp;
    const shipped = (shipments.get(o.data.orderId) ?? []).find((s) => Math.abs(s.timestamp - at) <= SHIP_WITHIN_MS);
    return {
      order_id: o.data.orderId,
      customer_id: o.data.customerId,
      placed_at: o.timestamp,
      amount: o.data.totalAmount,
      paid_at: paid?.timestamp ?? null,
      payment_method: paid?.data.method ?? null,
      shipped_at: shipped?.timestamp ?? null,
      carrier: shipped?.data.carrier ?? null,
    };
  });
}

function groupBy<T extends { data: { orderId: string } }>(list: readonly T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const x of list) out.set(x.data.orderId, [...(out.get(x.data.orderId) ?? []), x]);
  return out;
}

export interface TimelineTopics {
  ORDERS_TOPIC: string;
  PAYMENTS_TOPIC: string;
  SHIPMENTS_TOPIC: string;
}

/**
 * Writes the events to their three topics (TopicName subjects, OrderPlaced as v2), keyed by order id, in event-time
 * order across the topics, as the three services would over time; at most `ratePerSecond` events a second.
 */
export async function produceTimeline(
  conn: KafkaConnection,
  codec: AvroCodec,
  topics: TimelineTopics,
  e: TimelineEvents,
  ratePerSecond?: number,
): Promise<number> {
  const encoders = {
    OrderPlaced: [topics.ORDERS_TOPIC, 'OrderPlacedV2'],
    PaymentCaptured: [topics.PAYMENTS_TOPIC, 'PaymentCaptured'],
    OrderShipped: [topics.SHIPMENTS_TOPIC, 'OrderShipped'],
  } as const;
  const encode = new Map<string, (v: unknown) => Buffer>();
  for (const [type, [topic, schema]] of Object.entries(encoders)) {
    const enc = await codec.encoder(subjectName('TopicName', { topic }), readSchema(schema));
    encode.set(type, (v) => enc.encode(v));
  }
  const all = [...e.orders, ...e.payments, ...e.shipments].sort((a, b) => a.timestamp - b.timestamp);
  const producer = await openProducer(conn);
  const chunk = ratePerSecond ? Math.max(1, Math.floor(ratePerSecond / 20)) : 5000;
  const started = performance.now();
  try {
    for (let i = 0; i < all.length; i += chunk) {
      const byTopic = new Map<string, Array<{ key: string; value: Buffer }>>();
      for (const ev of all.slice(i, i + chunk)) {
        const topic = encoders[ev.eventType][0];
        const list = byTopic.get(topic) ?? [];
        list.push({ key: ev.data.orderId, value: encode.get(ev.eventType)!(ev) });
        byTopic.set(topic, list);
      }
      await Promise.all([...byTopic].map(([topic, messages]) => producer.send(topic, messages)));
      if (ratePerSecond) {
        const ahead = ((i + chunk) / ratePerSecond) * 1000 - (performance.now() - started);
        if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
      }
    }
  } finally {
    await producer.close();
  }
  return all.length;
}
