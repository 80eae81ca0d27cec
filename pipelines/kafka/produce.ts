// Sending a batch of messages on the client's native producer. The KafkaJS layer's send makes a promise, a
// metadata object and a header copy per message, and rewrites the messages it is given: profiled on the ladder's
// produce rungs, that layer cost about two thirds of the native produce call's CPU. A batch here waits on one count.
import type { KafkaJS } from '@confluentinc/kafka-javascript';

export interface KafkaMessage {
  key: Buffer | string | null;
  value: Buffer | null;
  headers?: Record<string, string | Buffer>;
  /** A partition chosen by the caller (the state changelog); by default the key decides. */
  partition?: number;
  /** The record timestamp (epoch ms, as a string); by default the producer's clock. */
  timestamp?: string;
}

/** What a Kafka sink writes with: the real one is `senderOf`, a test's fake records the batches. */
export interface MessageSender {
  send(o: { topic: string; messages: readonly KafkaMessage[] }): Promise<unknown>;
}

interface NativeProducer {
  produce(
    topic: string,
    partition: number,
    value: Buffer | null,
    key: Buffer | string | null,
    timestamp: number,
    opaque: unknown,
    headers: Array<Record<string, string | Buffer>> | null,
  ): unknown;
}

/** librdkafka's queue is at its bound (`queue.buffering.max.kbytes` or `.messages`). */
const QUEUE_FULL = -184;
/** How long a send waits for a delivery report to make room before trying again anyway. */
const ROOM_WAIT_MS = 50;

/**
 * Every message of the batch handed to librdkafka, settled when the last delivery report comes back (rejected at
 * the first failed one). The KafkaJS layer's delivery handler stays the one that reads the reports: it answers
 * `resolve` or `reject` on each message's opaque, and a batch shares one. A full queue is not a failure: the send
 * waits for deliveries to make room and goes on with the message it stopped at, so the producer's memory holds to
 * its bound and nothing is sent twice.
 */
export async function sendBatch(
  producer: KafkaJS.Producer,
  topic: string,
  messages: readonly KafkaMessage[],
): Promise<void> {
  if (messages.length === 0) return;
  // Not in the client's types; the lockfile pins the version whose layer this relies on.
  const native = (producer as unknown as { _getInternalClient(): NativeProducer })._getInternalClient();
  let left = messages.length;
  let failed = false;
  let room: (() => void) | undefined;
  let settle!: { resolve(): void; reject(err: unknown): void };
  const delivered = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });
  // A report may fail the batch while the loop below waits for room: handled here, returned at the end.
  delivered.catch(() => {});
  const opaque = {
    resolve() {
      room?.();
      if (--left === 0 && !failed) settle.resolve();
    },
    reject(err: unknown) {
      room?.();
      if (failed) return;
      failed = true;
      settle.reject(err);
    },
  };
  for (let i = 0; i < messages.length && !failed; ) {
    const m = messages[i]!;
    try {
      const ts = m.timestamp ? Number(m.timestamp) : 0;
      native.produce(topic, m.partition ?? -1, m.value, m.key, ts, opaque, m.headers ? headerList(m.headers) : null);
      i++;
    } catch (err) {
      if ((err as { code?: number }).code !== QUEUE_FULL) {
        // A closed producer or a message the client refuses: what was queued is delivered anyway, and a retry
        // sends the batch again.
        opaque.reject(err);
        break;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ROOM_WAIT_MS);
        room = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      room = undefined;
    }
  }
  return delivered;
}

function headerList(headers: Record<string, string | Buffer>): Array<Record<string, string | Buffer>> {
  const list: Array<Record<string, string | Buffer>> = [];
  for (const key in headers) list.push({ [key]: headers[key]! });
  return list;
}

/** The sinks' sender on the worker's producer. */
export function senderOf(producer: KafkaJS.Producer): MessageSender {
  return { send: (o) => sendBatch(producer, o.topic, o.messages) };
}
