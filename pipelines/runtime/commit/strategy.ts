// How a processed batch becomes committed: the contract between the batch loop and its two commit strategies,
// acknowledgement-based (sinks flush on their own; offsets follow their acknowledgements) and transactional
// (every output and the offsets in one Kafka transaction per batch).
import type { KafkaMessage } from '../../kafka/produce.ts';
import type { WorkerEvents } from '../../observe/events.ts';
import type { WorkerLog } from '../../observe/log.ts';
import type { KafkaSink } from '../../sinks/kafka/sink.ts';
import type { Sink, SourceRange } from '../../sinks/sink.ts';
import type { SourceConsumer } from '../source.ts';
import type { PartitionTask } from '../task.ts';

/** The outputs of one processed segment of one partition. */
export interface Delivery {
  task: PartitionTask;
  range: SourceRange;
  /** Rows per sink id, for the sinks that take them (a sink that holds them already is left out). */
  outputs: Record<string, unknown[]>;
  /** Dead letters, as messages for the dead-letter topic. */
  deadLetters: KafkaMessage[];
  /** The state changes of the segment, as changelog messages (stateful topologies). */
  state: KafkaMessage[] | undefined;
}

/** What a strategy may use of the worker. */
export interface CommitContext {
  consumer: SourceConsumer;
  sinks: Sink[];
  deadLetters: KafkaSink | undefined;
  /** The topology's sinks and the dead letters: everything a batch writes. */
  outputs: Sink[];
  changelog: KafkaSink | undefined;
  log: WorkerLog;
  events: WorkerEvents | undefined;
  /** Runs `fn`, retrying what is retriable under the topology's policy, until the worker stops. */
  retry<T>(what: string, fn: () => Promise<T>): Promise<T>;
  /** The current task of each assigned partition. */
  tasks(): Iterable<PartitionTask>;
  /** Whether `task` is still its partition's current task (no revoke since it was created). */
  owns(task: PartitionTask): boolean;
  /** Per 'topic/partition', the oldest offset a step still holds: nothing at or past it is committed. */
  heldOffsets(): Record<string, number | bigint | string> | undefined;
  stopping(): boolean;
  /** Pauses or resumes fetching (backpressure); nothing happens while no partition is assigned. */
  pause(paused: boolean): void;
  paused(): boolean;
  fail(err: Error): void;
  now(): number;
}

export interface CommitStrategy {
  /** Starts what runs on its own (a flush timer). */
  start(): void;
  /** Hands over a processed segment; resolves when the loop may go on with the partition. */
  deliver(d: Delivery): Promise<void>;
  /** The restored state holds every record of `task` up to `last`: their offsets may be committed. */
  skipped(task: PartitionTask, last: string): void;
  /** After each batch: backpressure. */
  afterBatch(): void;
  /** Before partitions are revoked: make their work durable and committed (`batchesDone`: the batches in hand). */
  revoking(tasks: PartitionTask[], batchesDone: () => Promise<void>): Promise<void>;
  /** Partitions were revoked: forget what is tracked for them. */
  revoked(tasks: PartitionTask[]): void;
  /** On a clean stop, after the last batch: flush and commit what is left. */
  drain(): Promise<void>;
  stop(): void;
}
