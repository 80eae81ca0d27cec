// The source consumer as the worker sees it: the few calls it makes, typed here so that the worker does not
// depend on a particular client. `kafkaSource` adapts the Kafka client; the unit tests drive a fake
// (test/unit/worker/fake-kafka.ts) through the same interface, step by step.
import {
  ASSIGN_PARTITIONS,
  BatchConsumer,
  type CommitOffset,
  type FetchedBatch,
  REVOKE_PARTITIONS,
  type RebalanceListener,
  type TopicPartition,
} from '../kafka/batch-consumer.ts';
import type { WorkerLog } from '../observe/log.ts';

export type {
  CommitOffset,
  FetchedBatch,
  FetchedMessage,
  RebalanceListener,
  TopicPartition,
} from '../kafka/batch-consumer.ts';
export { ASSIGN_PARTITIONS, REVOKE_PARTITIONS };

export interface SourceConsumer {
  connect(): Promise<void>;
  subscribe(o: { topics: string[] }): Promise<void>;
  run(o: {
    /** How many batches may be in hand at once (processing, or queued behind their partition's last). */
    batchesInHand: number;
    eachBatch(payload: { batch: FetchedBatch }): Promise<void>;
  }): Promise<void>;
  /** Without `partitions`: every partition of the topic assigned now. */
  pause(topics: Array<{ topic: string; partitions?: number[] }>): void;
  resume(topics: Array<{ topic: string; partitions?: number[] }>): void;
  commitOffsets(offsets: CommitOffset[]): Promise<void>;
  committed(partitions: TopicPartition[], timeoutMs?: number): Promise<Array<TopicPartition & { offset: string }>>;
  disconnect(): Promise<void>;
}

export interface SourceClient {
  consumer(config: Record<string, unknown>, onRebalance: RebalanceListener): SourceConsumer;
}

/**
 * The Kafka client as a source: its librdkafka consumer under the worker's batch loop (kafka/batch-consumer.ts).
 * `client` is the connection's properties (bootstrap servers, security); errors the client reports on its own
 * (a broker unreachable for a while) are logged, since librdkafka retries them itself.
 */
export function kafkaSource(client: Record<string, unknown>, log: WorkerLog): SourceClient {
  return {
    consumer: (config, onRebalance) =>
      new BatchConsumer({
        config: { ...client, ...config },
        onRebalance,
        onError: (err) => log.warn({ err: err.message }, 'kafka consumer'),
      }),
  };
}
