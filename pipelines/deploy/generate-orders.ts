// The demo's order generator as a one-shot job, for a deployed stack (compose's `orders` service, the image
// test): creates the order topics when missing, produces the customer and product snapshots and an order
// lifecycle in Avro. `node pipelines/deploy/generate-orders.ts [--orders N] [--seed S]`; topics from the
// same variables the example topologies read (ORDERS_TOPIC…), with the same defaults.
import { parseArgs } from 'node:util';
import { AvroCodec, RegistryClient } from '../codec/index.ts';
import { connectionsFrom } from '../kafka/connection.ts';
import {
  createOrderTopics,
  type OrderTopics,
  produceOrderEvents,
  produceOrderSnapshots,
} from '../loadgen/order-topics.ts';
import { orderLifecycleStream } from '../loadgen/orders.ts';

export function topicsFromEnv(env: NodeJS.ProcessEnv): OrderTopics {
  return {
    ORDERS_TOPIC: env.ORDERS_TOPIC || 'orders.events',
    CUSTOMERS_TOPIC: env.CUSTOMERS_TOPIC || 'customers.snapshot',
    PRODUCTS_TOPIC: env.PRODUCTS_TOPIC || 'products.snapshot',
    ENRICHED_TOPIC: env.ENRICHED_TOPIC || 'orders.enriched',
    STATUS_TOPIC: env.STATUS_TOPIC || 'orders.status',
    DLQ_TOPIC: env.DLQ_TOPIC || 'orders.events.dlq',
  };
}

export async function generateOrders(orders: number, seed: number, env: NodeJS.ProcessEnv): Promise<number> {
  const topics = topicsFromEnv(env);
  const conn = connectionsFrom(env);
  const codec = new AvroCodec({ registry: new RegistryClient(conn.registry) });
  await createOrderTopics(conn.kafka, topics);
  await produceOrderSnapshots(conn.kafka, codec, topics);
  return produceOrderEvents(conn.kafka, codec, topics, orderLifecycleStream(orders, { seed }));
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { orders: { type: 'string', default: '20000' }, seed: { type: 'string', default: '42' } },
  });
  const started = performance.now();
  const n = await generateOrders(Number(values.orders), Number(values.seed), process.env);
  const s = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(`produced ${n} order events to ${topicsFromEnv(process.env).ORDERS_TOPIC} in ${s} s\n`);
  setTimeout(() => process.exit(0), 100).unref();
}
