// Produces generated order data to Kafka in the Confluent wire format: for the demo, tests and benchmarks.
// Each event type is registered under its TopicRecordName subject (several types on one topic, ordered per
// order by the key), OrderPlaced in both versions; sends go in chunks awaited once each (the client batches with
// linger.ms).
import { type AvroCodec, subjectName } from '../codec/index.ts';
import { type KafkaConnection, kafkaOf } from '../kafka/connection.ts';
import { type KafkaMessage, sendBatch } from '../kafka/produce.ts';
import { type OrderEvent, readSchema, type SCHEMA_FILES } from './orders.ts';

/** A key and a value: a Buffer key passes as it is (raw keys, such as bytes that are not UTF-8: poison.ts). */
export type Message = Pick<KafkaMessage, 'key' | 'value'>;

/**
 * An encoder for order events: one registered schema per event type, chosen by `eventType`; an OrderPlaced whose
 * data has a `channel` (a string, or null) is written with v2, under the same subject as v1. v2 only adds an
 * optional field with a default, so the registry takes it as a BACKWARD (and FORWARD) compatible version.
 */
export async function orderEventEncoder(
  codec: AvroCodec,
  topic: string,
  schemaDir?: string,
): Promise<(e: OrderEvent) => Buffer> {
  const schemas = ['OrderPlaced', 'OrderPlacedV2', 'PaymentCaptured', 'OrderShipped', 'OrderCancelled'] as const;
  const encoders = new Map<string, (v: unknown) => Buffer>();
  // v1 first: on a new subject it becomes version 1, as a producer that upgrades later would have it.
  for (const name of schemas) {
    const schema = readSchema(name, schemaDir) as { name: string; namespace: string };
    const subject = subjectName('TopicRecordName', { topic, recordName: `${schema.namespace}.${schema.name}` });
    const encoder = await codec.encoder(subject, schema);
    encoders.set(name, (v) => encoder.encode(v));
  }
  return (e) =>
    encoders.get(e.eventType === 'OrderPlaced' && e.data.channel !== undefined ? 'OrderPlacedV2' : e.eventType)!(e);
}

/** An encoder for one snapshot schema (customers, products), TopicName subject. */
export async function snapshotEncoder(
  codec: AvroCodec,
  topic: string,
  name: Extract<keyof typeof SCHEMA_FILES, 'Customer' | 'Product'>,
  schemaDir?: string,
): Promise<(row: unknown) => Buffer> {
  const encoder = await codec.encoder(subjectName('TopicName', { topic }), readSchema(name, schemaDir));
  return (row) => encoder.encode(row);
}

export interface ProduceOptions {
  chunk?: number;
  config?: Record<string, unknown>;
  /** Events per second at most (undefined: as fast as the broker takes them). */
  ratePerSecond?: number;
  onProgress?: (sent: number) => void;
}

/** A producer kept open across sends: for callers that send many small batches (a live feed). */
export interface OpenProducer {
  send(topic: string, messages: Message[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens one producer. A caller that sends often keeps it: connecting and disconnecting a client per batch, many
 * times a second in one process, is where the native client's teardown races live.
 */
export async function openProducer(conn: KafkaConnection, config: Record<string, unknown> = {}): Promise<OpenProducer> {
  const kafka = kafkaOf(conn);
  const producer = kafka.producer({
    'linger.ms': 20,
    'batch.num.messages': 10_000,
    'enable.idempotence': true,
    'compression.type': 'lz4',
    ...config,
  } as never);
  await producer.connect();
  return {
    send: (topic, messages) => sendBatch(producer, topic, messages),
    close: () => producer.disconnect(),
  };
}

export async function produce(
  conn: KafkaConnection,
  topic: string,
  messages: Iterable<Message>,
  options: ProduceOptions = {},
): Promise<number> {
  const producer = await openProducer(conn, options.config);
  const rate = options.ratePerSecond;
  // Paced sends come in twentieths of a second's worth, so that the rate holds over short spans too.
  const chunk = rate ? Math.max(1, Math.floor(rate / 20)) : (options.chunk ?? 20_000);
  const started = performance.now();
  let sent = 0;
  const send = async (batch: Message[]) => {
    await producer.send(topic, batch);
    sent += batch.length;
    options.onProgress?.(sent);
    if (rate) {
      const ahead = (sent / rate) * 1000 - (performance.now() - started);
      if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
    }
  };
  try {
    let batch: Message[] = [];
    for (const m of messages) {
      batch.push(m);
      if (batch.length >= chunk) {
        await send(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await send(batch);
  } finally {
    await producer.close();
  }
  return sent;
}
