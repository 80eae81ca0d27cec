// A reader of partitions up to their end, on the client's low-level interface: read_committed, commit-less (a
// private group), each partition's end reported as a 'partition.eof' event. State restores and end probes use it.
import rdkafka from '@confluentinc/kafka-javascript';
import { clientConfig, type KafkaConnection } from './connection.ts';

export type EndReader = rdkafka.KafkaConsumer;
export type ReadMessage = rdkafka.Message;

/** Connected; `purpose` names its private group. Close it with `closeEndReader`. */
export async function openEndReader(conn: KafkaConnection, purpose: string, timeoutMs: number): Promise<EndReader> {
  const consumer = new rdkafka.KafkaConsumer(
    {
      ...clientConfig(conn),
      'group.id': `pipelines-${purpose}-${process.pid}-${Date.now()}`,
      'enable.auto.commit': false,
      'enable.partition.eof': true,
      'isolation.level': 'read_committed',
      'auto.offset.reset': 'earliest',
    } as never,
    {},
  );
  await new Promise<void>((resolve, reject) =>
    consumer.connect({ timeout: timeoutMs }, (err) => (err ? reject(err) : resolve())),
  );
  consumer.setDefaultConsumeTimeout(200);
  return consumer;
}

export function readBatch(reader: EndReader, size: number): Promise<ReadMessage[]> {
  return new Promise((resolve, reject) =>
    reader.consume(size, (err, messages) => (err ? reject(err) : resolve(messages))),
  );
}

export function closeEndReader(reader: EndReader): Promise<void> {
  return new Promise((resolve) => reader.disconnect(() => resolve()));
}
