// The source consumer as the worker sees it: the few calls it makes, typed here so that the worker does not
// depend on a particular client. `kafkaSource` adapts the Kafka client; the unit tests drive a fake
// (test/unit/worker/fake-kafka.ts) through the same interface, step by step.
import type { EventEmitter } from 'node:events';
import type { KafkaJS } from '@confluentinc/kafka-javascript';
import { PipelinesError } from '../errors.ts';
import type { Headers } from '../kafka/headers.ts';

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface CommitOffset extends TopicPartition {
  /** The next offset to read (last processed + 1), as Kafka expects. */
  offset: string;
}

export interface FetchedMessage {
  offset: string;
  key: Buffer | null | undefined;
  value: Buffer | null;
  /** Kafka record timestamp (ms, as a string). */
  timestamp: string;
  headers?: Headers | undefined;
}

export interface FetchedBatch {
  topic: string;
  partition: number;
  highWatermark: string;
  messages: FetchedMessage[];
}

export interface SourceConsumer {
  connect(): Promise<void>;
  subscribe(o: { topics: string[] }): Promise<void>;
  run(o: {
    partitionsConsumedConcurrently: number;
    eachBatchAutoResolve: boolean;
    eachBatch(payload: { batch: FetchedBatch }): Promise<void>;
  }): Promise<void>;
  /** Without `partitions`: every partition of the topic assigned now. */
  pause(topics: Array<{ topic: string; partitions?: number[] }>): void;
  resume(topics: Array<{ topic: string; partitions?: number[] }>): void;
  commitOffsets(offsets: CommitOffset[]): Promise<void>;
  committed(partitions: TopicPartition[], timeoutMs?: number): Promise<Array<TopicPartition & { offset: string }>>;
  disconnect(): Promise<void>;
}

/** librdkafka's rebalance codes, as the consumer's rebalance callback gets them. */
export const ASSIGN_PARTITIONS = -175;
export const REVOKE_PARTITIONS = -174;

/** Called for every rebalance; the consumer applies the change once the returned promise settles. */
export type RebalanceListener = (code: number, partitions: TopicPartition[]) => Promise<void>;

export interface SourceClient {
  consumer(config: Record<string, unknown>, onRebalance: RebalanceListener): SourceConsumer;
}

/** The Kafka client as a source: the listener goes in as librdkafka's rebalance_cb, which the client awaits. */
export function kafkaSource(kafka: KafkaJS.Kafka): SourceClient {
  return {
    consumer(config, onRebalance) {
      const consumer = kafka.consumer({
        ...config,
        rebalance_cb: (err: { code: number }, assignment: TopicPartition[]) =>
          onRebalance(
            err.code,
            assignment.map(({ topic, partition }) => ({ topic, partition })),
          ),
      } as never);
      // The consumer itself, not a wrapper: a transaction's sendOffsets needs the client's own object.
      const enqueue = consumer.commitOffsets.bind(consumer);
      consumer.commitOffsets = (offsets) => confirmedCommit(consumer, enqueue, offsets as CommitOffset[]);
      return consumer as unknown as SourceConsumer;
    },
  };
}

/** How long a commit may go unanswered by the broker before the worker counts it as not made. */
const COMMIT_CONFIRM_MS = 15_000;

/**
 * A commit that resolves once the broker took it. The client's commitOffsets() only queues the commit (librdkafka's
 * commitAsync) and resolves at once: a commit the group then refuses (REBALANCE_IN_PROGRESS while it waits for a
 * member that was killed) was lost without a word, and the worker, taking it as made, never committed that
 * partition again while no new record came (the commit stall of issue 12). The broker's answer comes as the
 * client's offset-commit event: this waits for the one that carries these offsets, and rejects with its error.
 */
function confirmedCommit(
  consumer: KafkaJS.Consumer,
  enqueue: (offsets: CommitOffset[]) => Promise<void>,
  offsets: CommitOffset[],
): Promise<void> {
  const events = (consumer as unknown as { _getInternalClient?(): EventEmitter | null })._getInternalClient?.();
  if (!events) return enqueue(offsets); // a client without the event: as before
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      events.off('offset.commit', onCommit);
      if (err) reject(err);
      else resolve();
    };
    const onCommit = (err: unknown, committed: Array<{ topic: string; partition: number; offset: number }>) => {
      const ours = offsets.every((o) =>
        committed?.some((c) => c.topic === o.topic && c.partition === o.partition && String(c.offset) === o.offset),
      );
      if (!ours) return;
      if (!err) return done();
      const code = typeof err === 'number' ? err : (err as { code?: number }).code;
      const e = err instanceof Error ? err : new Error(`the broker refused the commit (librdkafka error ${code})`);
      done(Object.assign(e, { code }));
    };
    const timer = setTimeout(
      () =>
        done(
          new PipelinesError('KAFKA_COMMIT_UNCONFIRMED', `no answer to a commit in ${COMMIT_CONFIRM_MS / 1000} s`, {
            retriable: false,
          }),
        ),
      COMMIT_CONFIRM_MS,
    );
    events.on('offset.commit', onCommit);
    enqueue(offsets).catch((err: Error) => done(err));
  });
}
