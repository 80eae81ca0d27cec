// The ladder's peer: the worker a user would write by hand for L2's work, with the usual libraries (kafkajs,
// @kafkajs/confluent-schema-registry, whose decode runs avsc), eachBatch and the client's auto-commit. The customer
// table is read to its end into a Map first, as such a worker would.
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import kafkajs from 'kafkajs';
import lz4 from 'lz4js';
import { connectionsFrom } from '../../pipelines/kafka/connection.ts';
import { counter } from './baseline.ts';

interface Placed {
  eventType: string;
  timestamp: number;
  data: { orderId: string; customerId: string; totalAmount: number; items: unknown[] };
}

// The topic is LZ4-compressed (as the load generator writes it); kafkajs leaves the codec to the user.
const { CompressionCodecs, CompressionTypes, Kafka, logLevel } = kafkajs;
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  compress: async (encoder: { buffer: Buffer }) => Buffer.from(lz4.compress(encoder.buffer)),
  decompress: async (buffer: Buffer) => Buffer.from(lz4.decompress(buffer)),
});

export async function handWrittenWorker(
  env: Record<string, string>,
  total: number,
  onFirst: () => void,
): Promise<{ records: number; ms: number }> {
  const conn = connectionsFrom(process.env);
  const kafka = new Kafka({ brokers: conn.kafka.brokers, clientId: 'ladder-kafkajs', logLevel: logLevel.ERROR });
  const registry = new SchemaRegistry({ host: conn.registry.url });
  const customers = await readTable(kafka, registry, env.CUSTOMERS_TOPIC!);
  const c = counter(total, onFirst);
  const consumer = kafka.consumer({ groupId: `ladder-kafkajs-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: env.ORDERS_TOPIC!, fromBeginning: true });
  let kept = 0;
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        const e = (await registry.decode(m.value!)) as Placed;
        if (e.eventType !== 'OrderPlaced') continue;
        const customer = customers.get(e.data.customerId);
        const row = {
          orderId: e.data.orderId,
          segment: customer?.segment ?? 'unknown',
          amount: e.data.totalAmount,
          items: e.data.items.length,
          at: e.timestamp,
        };
        if (row.orderId) kept++;
      }
      c.add(batch.messages.length);
    },
  });
  const r = await c.done;
  await consumer.disconnect();
  if (kept === 0) throw new Error('the hand-written worker kept no order');
  return r;
}

async function readTable(kafka: kafkajs.Kafka, registry: SchemaRegistry, topic: string) {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const left = new Set(ends.filter((p) => Number(p.high) > Number(p.low)).map((p) => p.partition));
  const rows = new Map<string, { segment: string }>();
  if (left.size === 0) return rows;
  const consumer = kafka.consumer({ groupId: `ladder-kafkajs-table-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        const row = (await registry.decode(message.value!)) as { customerId: string; segment: string };
        rows.set(row.customerId, row);
        const end = ends.find((p) => p.partition === partition)!;
        if (Number(message.offset) + 1 >= Number(end.high)) left.delete(partition);
        if (left.size === 0) resolve();
      },
    });
  });
  await consumer.disconnect();
  return rows;
}
