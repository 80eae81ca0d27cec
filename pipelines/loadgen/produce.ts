// Produces generated order events to Kafka in the Confluent wire format: for the demo, tests and benchmarks.
// Sends in chunks awaited once each (the client batches with linger.ms), keyed by order id.
import { KafkaJS } from '@confluentinc/kafka-javascript';
import type { AvroEncoder } from '../codec/index.ts';
import { clientConfig, type KafkaConnection } from '../kafka/connection.ts';

export interface ProduceOptions {
  topic: string;
  encoder: Pick<AvroEncoder, 'encode'>;
  events: Iterable<{ data: { orderId: string } }>;
  chunk?: number;
  /** Extra librdkafka producer properties. */
  config?: Record<string, unknown>;
}

export async function produceEvents(conn: KafkaConnection, o: ProduceOptions): Promise<number> {
  const kafka = new KafkaJS.Kafka({ ...clientConfig(conn), kafkaJS: { logLevel: KafkaJS.logLevel.ERROR } } as never);
  const producer = kafka.producer({
    'linger.ms': 20,
    'batch.num.messages': 10_000,
    'enable.idempotence': true,
    'compression.type': 'lz4',
    ...o.config,
  } as never);
  await producer.connect();
  const chunk = o.chunk ?? 20_000;
  let sent = 0;
  try {
    let messages: KafkaJS.Message[] = [];
    for (const e of o.events) {
      messages.push({ key: e.data.orderId, value: o.encoder.encode(e) });
      if (messages.length >= chunk) {
        await producer.send({ topic: o.topic, messages });
        sent += messages.length;
        messages = [];
      }
    }
    if (messages.length > 0) {
      await producer.send({ topic: o.topic, messages });
      sent += messages.length;
    }
  } finally {
    await producer.disconnect();
  }
  return sent;
}
