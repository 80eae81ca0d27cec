// Reading a topic to its current end, batch by batch: the dead-letter tools and the saga timeline.
import type { KafkaJS } from '@confluentinc/kafka-javascript';
import type { KafkaConnection } from './connection.ts';
import { endOffsets } from './offsets.ts';

/**
 * Reads `topic` from `group`'s position (or the beginning) up to its current end, batch by batch.
 * `handle` runs for each batch; `commit` says whether the group's offsets advance. `readCommitted` skips what
 * aborted transactions wrote (topics written exactly once).
 */
export async function readToEnd(
  conn: KafkaConnection,
  kafka: KafkaJS.Kafka,
  topic: string,
  group: string,
  commit: boolean,
  handle: (partition: number, messages: KafkaJS.KafkaMessage[]) => Promise<void>,
  timeoutMs: number,
  options: { readCommitted?: boolean } = {},
): Promise<void> {
  const ends = await endOffsets(conn, topic);
  const remaining = new Map([...ends].filter(([, high]) => high > 0n));
  if (remaining.size === 0) return;
  const consumer = kafka.consumer({
    'group.id': group,
    'enable.auto.commit': false,
    'auto.offset.reset': 'earliest',
    ...(options.readCommitted ? { 'isolation.level': 'read_committed' } : {}),
  } as never);
  await consumer.connect();
  await consumer.subscribe({ topics: [topic] });
  try {
    await new Promise<void>((resolve, reject) => {
      let idle: NodeJS.Timeout;
      let failed = false;
      // Partitions the group has already read to the end produce no batch: give up waiting after a quiet spell.
      const arm = () => {
        clearTimeout(idle);
        idle = setTimeout(resolve, timeoutMs);
      };
      arm();
      consumer
        .run({
          eachBatch: async ({ batch }) => {
            if (failed) return;
            arm();
            const end = ends.get(batch.partition) ?? 0n;
            const messages = batch.messages.filter((m) => BigInt(m.offset) < end);
            if (messages.length > 0) {
              // Not thrown to the client: it would seek back and hand the same batch again, forever.
              try {
                await handle(batch.partition, messages);
              } catch (err) {
                failed = true;
                clearTimeout(idle);
                reject(err);
                return;
              }
              if (commit) {
                const next = (BigInt(messages[messages.length - 1]!.offset) + 1n).toString();
                await consumer.commitOffsets([{ topic, partition: batch.partition, offset: next }]);
              }
            }
            const last = batch.messages[batch.messages.length - 1];
            if (last && BigInt(last.offset) + 1n >= end) remaining.delete(batch.partition);
            if (remaining.size === 0) {
              clearTimeout(idle);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
}
