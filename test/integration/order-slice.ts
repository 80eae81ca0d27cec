// The first vertical slice, end to end on real services: OrderPlaced events are registered in the
// Schema Registry, produced to Kafka in the Confluent wire format, consumed in a consumer group,
// decoded with avsc and inserted into ClickHouse; offsets are committed only after the insert. The
// foundation's check that the four services and libraries work together, kept as a test: the worker
// runtime (pipelines/runtime) does this job for the topologies.
import type { ClickHouseClient } from '@clickhouse/client';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { type OrderPlaced, readSchema } from '../../pipelines/loadgen/orders.ts';

export interface SliceOptions {
  brokers: string[];
  registryUrl: string;
  clickhouse: ClickHouseClient;
  topic: string;
  group: string;
  table: string;
  events: Iterable<OrderPlaced>;
  /** Gives up if not everything has landed within this time. */
  timeoutMs?: number;
  log?: (message: string) => void;
}

export interface SliceResult {
  produced: number;
  landed: number;
  elapsedMs: number;
}

const WIRE_MAGIC = 0;

export async function runOrderSlice(o: SliceOptions): Promise<SliceResult> {
  const log = o.log ?? (() => {});
  const started = Date.now();
  const registry = new SchemaRegistry({ host: o.registryUrl });
  const orderPlacedSchema = readSchema('OrderPlaced');
  const { id: schemaId } = await registry.register(
    { type: SchemaType.AVRO, schema: JSON.stringify(orderPlacedSchema) },
    { subject: `${o.topic}-value` },
  );
  const type = avro.Type.forSchema(orderPlacedSchema as unknown as avro.Schema);
  log(`registered ${o.topic}-value as schema id ${schemaId}`);

  await o.clickhouse.command({
    query: `CREATE TABLE IF NOT EXISTS ${o.table} (
      order_id String, customer_id String, total_amount Float64, items UInt16,
      event_time DateTime64(3, 'UTC'), kafka_partition UInt32, kafka_offset UInt64
    ) ENGINE = MergeTree ORDER BY (order_id)`,
  });

  const kafka = new KafkaJS.Kafka({ kafkaJS: { brokers: o.brokers, logLevel: KafkaJS.logLevel.ERROR } });
  const producer = kafka.producer({ 'linger.ms': 10, kafkaJS: { idempotent: true } });
  await producer.connect();
  const messages = [];
  for (const event of o.events) {
    const body = type.toBuffer(event);
    const value = Buffer.alloc(5 + body.length);
    value.writeUInt8(WIRE_MAGIC, 0);
    value.writeUInt32BE(schemaId, 1);
    body.copy(value, 5);
    messages.push({ key: event.data.orderId, value });
  }
  // One send, awaited once: the client batches (linger.ms) and keeps per-key order.
  await producer.send({ topic: o.topic, messages });
  await producer.disconnect();
  log(`produced ${messages.length} OrderPlaced events to ${o.topic}`);

  const consumer = kafka.consumer({
    'js.consumer.max.batch.size': 5000,
    kafkaJS: { groupId: o.group, fromBeginning: true, autoCommit: false },
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [o.topic] });
  let landed = 0;
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`only ${landed} of ${messages.length} events landed in ${o.timeoutMs ?? 60_000} ms`)),
      o.timeoutMs ?? 60_000,
    );
    consumer
      .run({
        eachBatch: async ({ batch }) => {
          const rows = batch.messages.map((m) => {
            const value = m.value!;
            if (value.readUInt8(0) !== WIRE_MAGIC || value.readUInt32BE(1) !== schemaId) {
              throw new Error(`unexpected wire header at ${batch.topic}/${batch.partition}@${m.offset}`);
            }
            const e = type.fromBuffer(value.subarray(5)) as OrderPlaced;
            return {
              order_id: e.data.orderId,
              customer_id: e.data.customerId,
              total_amount: e.data.totalAmount,
              items: e.data.items.length,
              event_time: new Date(e.timestamp).toISOString().replace('T', ' ').replace('Z', ''),
              kafka_partition: batch.partition,
              kafka_offset: m.offset,
            };
          });
          await o.clickhouse.insert({ table: o.table, values: rows, format: 'JSONEachRow' });
          // Commit only what ClickHouse has acknowledged.
          const next = (BigInt(batch.messages[batch.messages.length - 1]!.offset) + 1n).toString();
          await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }]);
          landed += rows.length;
          if (landed >= messages.length) {
            clearTimeout(timer);
            resolve();
          }
        },
      })
      .catch(reject);
  });
  try {
    await done;
  } finally {
    await consumer.disconnect();
  }
  log(`consumed and inserted ${landed} rows into ClickHouse table ${o.table}`);
  return { produced: messages.length, landed, elapsedMs: Date.now() - started };
}
