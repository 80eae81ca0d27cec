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

export interface Sink {
  readonly id: string;
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

/** Errors that say whether trying again can help (as kafkajs does), read by the retry logic. */
export class SinkError extends Error {
  readonly retriable: boolean;
  constructor(message: string, options: { retriable: boolean; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = 'SinkError';
    this.retriable = options.retriable;
  }
}
