// Deterministic order data (seeded): order lifecycles (placed → paid → shipped, or cancelled), and customer
// and product snapshots. The same seed always yields the same events, so expected results can be computed
// independently of the pipeline. Avro schemas are the topologies' own (topologies/schemas/*.avsc).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { zipfRanks } from './zipf.ts';

export interface OrderItem {
  productId: string;
  quantity: number;
  price: number;
}

interface Envelope<T extends string, D> {
  eventId: string;
  eventType: T;
  timestamp: number;
  data: D;
}

export type OrderPlaced = Envelope<
  'OrderPlaced',
  {
    orderId: string;
    customerId: string;
    items: OrderItem[];
    totalAmount: number;
    /** v2 only (OrderPlaced-v2.avsc): an event that has it is written with v2, one without with v1. */
    channel?: string | null;
  }
>;
export type PaymentCaptured = Envelope<
  'PaymentCaptured',
  { orderId: string; paymentId: string; amount: number; method: string }
>;
export type OrderShipped = Envelope<'OrderShipped', { orderId: string; carrier: string; trackingNumber: string }>;
export type OrderCancelled = Envelope<'OrderCancelled', { orderId: string; reason: string }>;
export type OrderEvent = OrderPlaced | PaymentCaptured | OrderShipped | OrderCancelled;

export interface Customer {
  customerId: string;
  name: string;
  segment: string;
  country: string;
}

export interface Product {
  productId: string;
  name: string;
  category: string;
  listPrice: number;
}

/** The schema files of the order domain, by event type (v1 of OrderPlaced: what most producers write today). */
export const SCHEMA_FILES = {
  OrderPlaced: 'OrderPlaced.avsc',
  OrderPlacedV2: 'OrderPlaced-v2.avsc',
  PaymentCaptured: 'PaymentCaptured.avsc',
  OrderShipped: 'OrderShipped.avsc',
  OrderCancelled: 'OrderCancelled.avsc',
  Customer: 'Customer.avsc',
  Product: 'Product.avsc',
} as const;

export function readSchema(name: keyof typeof SCHEMA_FILES, dir = join('topologies', 'schemas')): object {
  return JSON.parse(readFileSync(join(dir, SCHEMA_FILES[name]), 'utf8')) as object;
}

/** mulberry32: tiny, fast, good enough for test data; not for anything secret. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface OrderStreamOptions {
  seed?: number;
  /** Event time of the first order (ms since epoch). */
  startTime?: number;
  /** Event-time gap between consecutive orders (ms). */
  stepMs?: number;
  customers?: number;
  products?: number;
  /**
   * Zipf exponent of customer activity: the customer of rank k (C00000 first) places orders in proportion to
   * 1/(k+1)^skew. 0 or undefined: uniform, the stream of before (same draws, same events).
   */
  skew?: number;
}

export const customerId = (i: number) => `C${String(i).padStart(5, '0')}`;
const productId = (i: number) => `P${String(i).padStart(4, '0')}`;

export function* orderPlacedStream(count: number, options: OrderStreamOptions = {}): Generator<OrderPlaced> {
  const rnd = seededRandom(options.seed ?? 42);
  const start = options.startTime ?? Date.UTC(2026, 0, 1);
  const step = options.stepMs ?? 100;
  const customer = customerPicker(options);
  for (let i = 0; i < count; i++) yield placed(rnd, customer, i, start + i * step, options);
}

/**
 * The customer index of an order from one uniform draw, made once per stream: skew 0 keeps the original
 * expression (so that existing seeded streams stay byte-identical), else Zipf by inverse CDF.
 */
function customerPicker(o: OrderStreamOptions): (u: number) => number {
  const n = o.customers ?? 500;
  return o.skew ? zipfRanks(n, o.skew) : (u) => Math.floor(u * n);
}

function placed(
  rnd: () => number,
  customer: (u: number) => number,
  i: number,
  timestamp: number,
  o: OrderStreamOptions,
): OrderPlaced {
  const items: OrderItem[] = [];
  const n = 1 + Math.floor(rnd() * 3);
  let total = 0;
  for (let j = 0; j < n; j++) {
    const quantity = 1 + Math.floor(rnd() * 4);
    // Prices in whole cents keep sums exact enough to compare after float arithmetic.
    const price = Math.round((5 + rnd() * 95) * 100) / 100;
    items.push({ productId: productId(Math.floor(rnd() * (o.products ?? 50))), quantity, price });
    total += quantity * price;
  }
  return {
    eventId: `evt-${o.seed ?? 42}-${i}-placed`,
    eventType: 'OrderPlaced',
    timestamp,
    data: {
      orderId: `O${String(i).padStart(8, '0')}`,
      customerId: customerId(customer(rnd())),
      items,
      totalAmount: Math.round(total * 100) / 100,
    },
  };
}

/**
 * Whole lifecycles, interleaved in event-time order: each order is placed; 85% are paid a few seconds later,
 * of which 90% ship; the others are cancelled. Per order the events come in order (they share a key).
 */
export function* orderLifecycleStream(orders: number, options: OrderStreamOptions = {}): Generator<OrderEvent> {
  const rnd = seededRandom(options.seed ?? 42);
  const start = options.startTime ?? Date.UTC(2026, 0, 1);
  const step = options.stepMs ?? 100;
  const customer = customerPicker(options);
  // Pending follow-up events, ordered by time; small, since follow-ups come within seconds.
  const pending: OrderEvent[] = [];
  const release = (until: number) => {
    pending.sort((a, b) => a.timestamp - b.timestamp);
    const out: OrderEvent[] = [];
    while (pending.length > 0 && pending[0]!.timestamp <= until) out.push(pending.shift()!);
    return out;
  };
  for (let i = 0; i < orders; i++) {
    const t = start + i * step;
    yield* release(t);
    const p = placed(rnd, customer, i, t, options);
    yield p;
    const { orderId } = p.data;
    const id = (what: string) => `evt-${options.seed ?? 42}-${i}-${what}`;
    if (rnd() < 0.85) {
      const paidAt = t + 1000 + Math.floor(rnd() * 4000);
      const method = rnd() < 0.7 ? 'card' : 'paypal';
      pending.push({
        eventId: id('paid'),
        eventType: 'PaymentCaptured',
        timestamp: paidAt,
        data: { orderId, paymentId: `PAY-${i}`, amount: p.data.totalAmount, method },
      });
      if (rnd() < 0.9) {
        pending.push({
          eventId: id('shipped'),
          eventType: 'OrderShipped',
          timestamp: paidAt + 2000 + Math.floor(rnd() * 8000),
          data: { orderId, carrier: rnd() < 0.5 ? 'DHL' : 'UPS', trackingNumber: `TRK${i}` },
        });
      } else {
        pending.push({
          eventId: id('cancelled'),
          eventType: 'OrderCancelled',
          timestamp: paidAt + 500,
          data: { orderId, reason: 'customer request' },
        });
      }
    } else {
      pending.push({
        eventId: id('cancelled'),
        eventType: 'OrderCancelled',
        timestamp: t + 500 + Math.floor(rnd() * 2000),
        data: { orderId, reason: 'payment failed' },
      });
    }
  }
  yield* release(Number.POSITIVE_INFINITY);
}

const SEGMENTS = ['consumer', 'smb', 'enterprise'];
const CATEGORIES = ['books', 'games', 'garden', 'kitchen', 'toys'];

export function customerSnapshots(count = 500, seed = 1): Customer[] {
  const rnd = seededRandom(seed);
  return Array.from({ length: count }, (_, i) => ({
    customerId: customerId(i),
    name: `Customer ${i}`,
    segment: SEGMENTS[Math.floor(rnd() * SEGMENTS.length)]!,
    country: rnd() < 0.5 ? 'DE' : 'FR',
  }));
}

export function productSnapshots(count = 50, seed = 2): Product[] {
  const rnd = seededRandom(seed);
  return Array.from({ length: count }, (_, i) => ({
    productId: productId(i),
    name: `Product ${i}`,
    category: CATEGORIES[Math.floor(rnd() * CATEGORIES.length)]!,
    listPrice: Math.round((5 + rnd() * 95) * 100) / 100,
  }));
}
