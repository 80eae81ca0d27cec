// A deterministic stream of order events (seeded), for the demo, tests and benchmarks.
// The same seed always yields the same events, so expected results can be computed independently.

export interface OrderItem {
  productId: string;
  quantity: number;
  price: number;
}

export interface OrderPlaced {
  eventId: string;
  eventType: 'OrderPlaced';
  timestamp: number;
  data: { orderId: string; customerId: string; items: OrderItem[]; totalAmount: number };
}

/** Avro schema of OrderPlaced v1, the shape every order event shares (envelope + data). */
export const orderPlacedSchema = {
  type: 'record',
  name: 'OrderPlaced',
  namespace: 'com.orders.events',
  fields: [
    { name: 'eventId', type: 'string' },
    { name: 'eventType', type: 'string' },
    { name: 'timestamp', type: { type: 'long', logicalType: 'timestamp-millis' } },
    {
      name: 'data',
      type: {
        type: 'record',
        name: 'OrderPlacedData',
        fields: [
          { name: 'orderId', type: 'string' },
          { name: 'customerId', type: 'string' },
          {
            name: 'items',
            type: {
              type: 'array',
              items: {
                type: 'record',
                name: 'OrderItem',
                fields: [
                  { name: 'productId', type: 'string' },
                  { name: 'quantity', type: 'int' },
                  { name: 'price', type: 'double' },
                ],
              },
            },
          },
          { name: 'totalAmount', type: 'double' },
        ],
      },
    },
  ],
} as const;

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
}

export function* orderPlacedStream(count: number, options: OrderStreamOptions = {}): Generator<OrderPlaced> {
  const rnd = seededRandom(options.seed ?? 42);
  const start = options.startTime ?? Date.UTC(2026, 0, 1);
  const step = options.stepMs ?? 100;
  const customers = options.customers ?? 500;
  const products = options.products ?? 50;
  for (let i = 0; i < count; i++) {
    const items: OrderItem[] = [];
    const n = 1 + Math.floor(rnd() * 3);
    let total = 0;
    for (let j = 0; j < n; j++) {
      const quantity = 1 + Math.floor(rnd() * 4);
      // Prices in whole cents keep sums exact enough to compare after float arithmetic.
      const price = Math.round((5 + rnd() * 95) * 100) / 100;
      items.push({ productId: `P${String(Math.floor(rnd() * products)).padStart(4, '0')}`, quantity, price });
      total += quantity * price;
    }
    yield {
      eventId: `evt-${options.seed ?? 42}-${i}`,
      eventType: 'OrderPlaced',
      timestamp: start + i * step,
      data: {
        orderId: `O${String(i).padStart(8, '0')}`,
        customerId: `C${String(Math.floor(rnd() * customers)).padStart(5, '0')}`,
        items,
        totalAmount: Math.round(total * 100) / 100,
      },
    };
  }
}
