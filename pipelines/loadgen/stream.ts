// The order events `pipelines loadgen` writes: lifecycles with skewed customers, then the disorder asked for, all
// seeded by one number. A function of its options alone: a second pass, or a test, makes the very same events.
import { type DisorderCounts, type DisorderShares, withDisorder } from './disorder.ts';
import { type OrderEvent, orderLifecycleStream } from './orders.ts';

export interface LoadStreamOptions {
  orders: number;
  seed: number;
  /** Zipf exponent of customer activity (OrderStreamOptions.skew). */
  skew?: number;
  shares?: DisorderShares;
}

export function loadStream(o: LoadStreamOptions, counts?: DisorderCounts): Generator<OrderEvent> {
  return withDisorder(orderLifecycleStream(o.orders, { seed: o.seed, skew: o.skew }), o.shares ?? {}, o.seed, counts);
}
