// A `module` step for the order topologies: one record per line of an OrderPlaced event.
import type { ModuleFunction } from '../../pipelines/steps/module.ts';

interface OrderPlaced {
  timestamp: number;
  data: {
    orderId: string;
    customerId: string;
    items: { productId: string; quantity: number; price: number }[];
    channel?: string | null;
  };
}

export const explodeItems: ModuleFunction = (vars) => {
  const e = vars.event as OrderPlaced;
  return e.data.items.map((item, line) => ({
    orderId: e.data.orderId,
    customerId: e.data.customerId,
    channel: e.data.channel ?? null,
    line,
    productId: item.productId,
    quantity: item.quantity,
    price: item.price,
    placedAt: e.timestamp,
  }));
};
