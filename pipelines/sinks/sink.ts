// The contract between the worker and every sink. Rows are appended per batch of one partition, with the
// offsets they came from; a sink reports what became durable as acknowledgements by partition offset, and the
// worker commits an offset only when every sink that got output from the records before it has acknowledged.

/** The records [first, last] of one partition that produced the rows being appended. */
export interface SourceRange {
  topic: string;
  partition: number;
  first: string;
  last: string;
}

/** Everything from this partition before `next` is durable in the sink. */
export interface Ack {
  topic: string;
  partition: number;
  next: string;
}

/** Offsets a sink already holds for a partition: records up to `first - 1` are in it; [first, last] may be. */
export interface ReplayRange {
  topic: string;
  partition: number;
  first: string;
  last: string;
}

/** How a sink reports the retries of its writes; set by the worker before the first append. */
export interface SinkRetries {
  /** Before each retry's sleep: the worker logs it, counts it and pauses the source meanwhile. */
  retried(attempt: number, error: Error): void;
  /** True once the worker stops: a write then gives up and throws its last error. */
  stopped(): boolean;
}

export const unsupervised: SinkRetries = { retried: () => {}, stopped: () => false };

export interface Sink {
  readonly id: string;
  /**
   * A sink retries its own writes, under the policy it was built with (the topology's `errors.retry`), and
   * reports each retry here: what `flush` throws is final, and nothing above it retries again.
   */
  retries: SinkRetries;
  /** Buffers the rows of one batch. Resolves at once unless the sink's buffer is full (backpressure). */
  append(rows: readonly unknown[], range: SourceRange): void | Promise<void>;
  /** Rows buffered and not yet durable. */
  readonly buffered: number;
  /** Writes what is buffered and waits for it; acknowledgements go to `onAck`. Throws when the sink gave up. */
  flush(): Promise<void>;
  /** Set by the worker before the first append. */
  onAck: (ack: Ack) => void;
  /**
   * Partitions were assigned, with the group's committed offsets. A sink that keeps its own positions
   * (exactly-once ClickHouse) answers the ranges the worker must skip up to and replay exactly.
   */
  assigned?(
    partitions: ReadonlyArray<{ topic: string; partition: number; committed: string | undefined }>,
  ): Promise<ReplayRange[]>;
  /** A partition was revoked: drop what is buffered for it (its next owner reads it again). */
  forget?(topic: string, partition: number): void;
  close(): Promise<void>;
}
