// A fold written in TypeScript (the `reduce` of a `fold` step): orders and spend per customer.
import type { FoldFunction } from '../../pipelines/steps/fold.ts';

export const customerTotals: FoldFunction = (state, vars) => {
  const event = vars.event as {
    eventType: string;
    timestamp: number;
    data: { customerId: string; totalAmount: number };
  };
  if (event.eventType !== 'OrderPlaced') return null;
  const orders = ((state?.orders as number | undefined) ?? 0) + 1;
  const spent = ((state?.spent as number | undefined) ?? 0) + event.data.totalAmount;
  return { customerId: event.data.customerId, orders, spent, lastOrderAt: event.timestamp };
};
