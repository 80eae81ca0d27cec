// The source consumer as the worker sees it: the few calls it makes, typed here so that the worker does not
// depend on a particular client. `kafkaSource` adapts the Kafka client; the unit tests drive a fake
// (test/unit/worker/fake-kafka.ts) through the same interface, step by step.
import type { KafkaJS } from '@confluentinc/kafka-javascript';
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
  pause(topics: Array<{ topic: string }>): void;
  resume(topics: Array<{ topic: string }>): void;
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
    consumer: (config, onRebalance) =>
      kafka.consumer({
        ...config,
        rebalance_cb: (err: { code: number }, assignment: TopicPartition[]) =>
          onRebalance(
            err.code,
            assignment.map(({ topic, partition }) => ({ topic, partition })),
          ),
      } as never) as unknown as SourceConsumer,
  };
}
