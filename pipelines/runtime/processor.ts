// The topology's steps as the worker sees them: the compiled plan (runtime/plan.ts) implements BatchProcessor,
// called synchronously once per batch segment of one partition, with time given by the worker.
import type { Headers } from '../kafka/headers.ts';
import type { DeadLetter } from './plan.ts';

export interface InputRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: unknown;
  /** Kafka record timestamp (ms). */
  timestamp: number;
  headers: Headers;
}

export interface StepResult {
  sinks: Record<string, unknown[]>;
  deadLetters: DeadLetter[];
}

/** The topology's steps as the worker sees them (the compiled plan): synchronous calls, time from the worker. */
export interface BatchProcessor {
  /** One batch of one partition; outputs per sink id, in order. */
  process(records: InputRecord[], now: number): StepResult;
  /** Steps with timers: `tick` lets the wall clock act on one partition's state between its batches. */
  readonly ticks?: boolean;
  tick?(now: number, partition: number): StepResult;
  /** Per 'topic/partition', the oldest offset still held by a step: nothing at or past it is committed. */
  heldOffsets?(): Record<string, number | bigint | string>;
  /** The partition was assigned (before its first batch). */
  assignPartition?(partition: number, now: number): void;
  /** The partition was revoked: drop what is held for it. */
  releasePartition?(partition: number): void;
}
