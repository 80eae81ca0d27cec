// The contract between the worker and every sink: rows are appended synchronously in the batch loop,
// tagged with the batch's sequence number; flush() makes them durable and says up to which batch.

export interface Sink {
  readonly id: string;
  /** Buffers the rows produced by batch `seq` (synchronous, no I/O). */
  append(rows: readonly unknown[], seq: number): void;
  /** Rows buffered and not yet flushed (for backpressure). */
  readonly buffered: number;
  /** True when the buffer is big enough to be worth a flush now. */
  readonly full: boolean;
  /**
   * Writes everything appended so far. Resolves with the highest batch sequence number now durable
   * (undefined when there was nothing to write). Throws only when the sink gave up (non-retriable).
   */
  flush(): Promise<number | undefined>;
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
