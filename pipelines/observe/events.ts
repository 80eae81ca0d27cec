// What a worker reports as it runs, for whoever listens (the metrics of observe/metrics.ts, progress displays).
// Declared here, below the runtime, so that listeners need not import the worker. Every event is optional.

export interface WorkerEvents {
  batch?(e: {
    topic: string;
    partition: number;
    records: number;
    highWatermark: string;
    lastOffset: string;
    lastTimestamp: number;
    outputs: Record<string, unknown[]>;
    /** Kafka timestamps (ms) of the batch's records; only when `acknowledged` is listened to. */
    timestamps?: Float64Array;
  }): void;
  stepped?(e: { step: string; ms: number; recordsIn: number; recordsOut: number }): void;
  deadLetter?(e: { step: string; errorClass: string; records?: number }): void;
  flushed?(e: { sink: string; ms: number }): void;
  retry?(e: { what: string; attempt: number; error: Error }): void;
  committed?(e: { partitions: number; ms: number }): void;
  /** A sink made everything of a partition before `next` durable (after a flush, or a transaction). */
  acknowledged?(e: { sink: string; topic: string; partition: number; next: string }): void;
  rebalance?(e: { kind: 'assign' | 'revoke'; partitions: Array<{ topic: string; partition: number }> }): void;
  paused?(paused: boolean): void;
  /** Partitions with records waiting made no progress for the liveness bound (the worker turns unhealthy). */
  stalled?(e: { partitions: Array<{ topic: string; partition: number }>; ms: number }): void;
}
