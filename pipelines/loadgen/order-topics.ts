// The topics of the order domain as the example topologies name them (through ${ORDERS_TOPIC}... in their
// files), created and filled with generated data: for the demo, the tests and the benchmarks.
import type { AvroCodec } from '../codec/index.ts';
import type { KafkaConnection } from '../kafka/connection.ts';
import { applyTopics } from '../kafka/topics.ts';
import { customerSnapshots, type OrderEvent, productSnapshots } from './orders.ts';
import { type Message, orderEventEncoder, type ProduceOptions, produce, snapshotEncoder } from './produce.ts';

/** Topic names keyed by the environment variables the example topologies read. */
export interface OrderTopics {
  ORDERS_TOPIC: string;
  CUSTOMERS_TOPIC: string;
  PRODUCTS_TOPIC: string;
  ENRICHED_TOPIC: string;
  STATUS_TOPIC: string;
  DLQ_TOPIC: string;
}

export function orderTopics(prefix: string): OrderTopics {
  return {
    ORDERS_TOPIC: `${prefix}.orders`,
    CUSTOMERS_TOPIC: `${prefix}.customers`,
    PRODUCTS_TOPIC: `${prefix}.products`,
    ENRICHED_TOPIC: `${prefix}.enriched`,
    STATUS_TOPIC: `${prefix}.status`,
    DLQ_TOPIC: `${prefix}.dlq`,
  };
}

/** Creates the topics with their partitions, one replica each (a one-broker cluster). */
export async function createOrderTopics(conn: KafkaConnection, topics: OrderTopics, partitions = 3): Promise<void> {
  await applyTopics(
    conn,
    [
      { name: topics.ORDERS_TOPIC, partitions, replicas: 1 },
      { name: topics.CUSTOMERS_TOPIC, partitions: 1, replicas: 1, cleanup: 'compact' },
      { name: topics.PRODUCTS_TOPIC, partitions: 1, replicas: 1, cleanup: 'compact' },
      { name: topics.ENRICHED_TOPIC, partitions, replicas: 1 },
      { name: topics.STATUS_TOPIC, partitions, replicas: 1, cleanup: 'compact' },
      { name: topics.DLQ_TOPIC, partitions: 1, replicas: 1 },
    ],
    { maxReplicas: 1 },
  );
}

/** The customer and product snapshots (keyed by id) on their compacted topics. */
export async function produceOrderSnapshots(
  conn: KafkaConnection,
  codec: AvroCodec,
  topics: Pick<OrderTopics, 'CUSTOMERS_TOPIC' | 'PRODUCTS_TOPIC'>,
): Promise<void> {
  const customers = await snapshotEncoder(codec, topics.CUSTOMERS_TOPIC, 'Customer');
  const products = await snapshotEncoder(codec, topics.PRODUCTS_TOPIC, 'Product');
  await produce(
    conn,
    topics.CUSTOMERS_TOPIC,
    customerSnapshots().map((c) => ({ key: c.customerId, value: customers(c) })),
  );
  await produce(
    conn,
    topics.PRODUCTS_TOPIC,
    productSnapshots().map((p) => ({ key: p.productId, value: products(p) })),
  );
}

/**
 * Order events keyed by order id (so that each order's events stay in order), plus any raw extra messages: among
 * the events (sent as they are, where they come) or after them.
 */
export async function produceOrderEvents(
  conn: KafkaConnection,
  codec: AvroCodec,
  topics: Pick<OrderTopics, 'ORDERS_TOPIC'>,
  events: Iterable<OrderEvent | Message>,
  extra: Message[] = [],
  options: Pick<ProduceOptions, 'ratePerSecond' | 'onProgress'> = {},
): Promise<number> {
  const encode = await orderEventEncoder(codec, topics.ORDERS_TOPIC);
  function* messages() {
    for (const e of events)
      yield 'eventType' in e ? { key: e.data.orderId, value: encode(e) } : { key: e.key, value: e.value };
    yield* extra;
  }
  return produce(conn, topics.ORDERS_TOPIC, messages(), options);
}
