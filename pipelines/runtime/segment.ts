// One segment of a partition's batch, decoded and run through the steps: what each sink gets, and the dead letters
// (decode failures and records a step rejected) as Kafka messages with their provenance. No I/O: the commit
// strategy delivers what this returns.
import { isUtf8 } from 'node:buffer';
import type { Decoder } from '../codec/decoder.ts';
import { PipelinesError } from '../errors.ts';
import type { Headers } from '../kafka/headers.ts';
import type { KafkaMessage } from '../kafka/produce.ts';
import type { WorkerEvents } from '../observe/events.ts';
import type { SourceRange } from '../sinks/sink.ts';
import { deadLetterMessages } from './dead-letter-messages.ts';
import type { DeadLetter } from './plan.ts';
import type { BatchProcessor, InputRecord } from './processor.ts';
import type { FetchedMessage } from './source.ts';
import type { Segment } from './task.ts';

export class DecodeError extends PipelinesError {
  override name = 'DecodeError';
  constructor(message: string) {
    super('DECODE', message);
  }
}

const NO_HEADERS: Headers = Object.freeze({}) as Headers;

export interface SegmentSteps {
  topology: string;
  decoder: Decoder;
  processor: BatchProcessor;
  /** Whether the topology has a dead-letter topic (else a dead letter stops the worker). */
  deadLetterTopic: boolean;
  events: WorkerEvents | undefined;
}

export interface SegmentResult {
  range: SourceRange;
  /** Rows per sink id, in order; sinks that already hold this range (a replay) get none. */
  outputs: Record<string, unknown[]>;
  deadLetters: KafkaMessage[];
}

export function runSegment(
  o: SegmentSteps,
  tp: { topic: string; partition: number },
  segment: Segment<FetchedMessage>,
  now: number,
): SegmentResult {
  const msgs = segment.messages;
  const records: InputRecord[] = [];
  const dead: DeadLetter[] = [];
  // Every record, decoded or not, beside its Kafka message: dead letters carry the original bytes.
  const all: InputRecord[] = new Array(msgs.length);
  const started = performance.now();
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i]!;
    const rec: InputRecord = {
      topic: tp.topic,
      partition: tp.partition,
      offset: m.offset,
      key: m.key ? m.key.toString() : null,
      value: undefined,
      timestamp: Number(m.timestamp),
      headers: (m.headers ?? NO_HEADERS) as Headers,
    };
    all[i] = rec;
    try {
      if (!m.value) throw new DecodeError('empty value (tombstone) on an event topic');
      // Read lossily, two different keys would become one: in keyed state, and where the key partitions an output.
      if (m.key && !isUtf8(m.key)) {
        throw new PipelinesError(
          'KEY_NOT_UTF8',
          `the record's key is not UTF-8 text (${m.key.length} bytes, hex ${m.key.subarray(0, 32).toString('hex')})`,
        );
      }
      rec.value = o.decoder.decode(m.value);
      records.push(rec);
    } catch (err) {
      const e = err as Error & { code?: string };
      const errorClass = e instanceof DecodeError ? e.name : (e.code ?? e.name);
      dead.push({ record: rec, stepId: 'decode', errorClass, message: e.message, retriable: false });
    }
  }
  const decoded = performance.now();
  o.events?.stepped?.({ step: 'decode', ms: decoded - started, recordsIn: msgs.length, recordsOut: records.length });
  const result = records.length > 0 ? o.processor.process(records, now) : undefined;
  o.events?.stepped?.({
    step: 'steps',
    ms: performance.now() - decoded,
    recordsIn: records.length,
    recordsOut: Object.values(result?.sinks ?? {}).reduce((n, rows) => n + rows.length, 0),
  });
  if (result) dead.push(...result.deadLetters);
  const outputs: Record<string, unknown[]> = {};
  for (const [id, rows] of Object.entries(result?.sinks ?? {}))
    if (!segment.skip.has(id) && rows.length > 0) outputs[id] = rows;
  for (const d of dead) o.events?.deadLetter?.({ step: d.stepId, errorClass: d.errorClass });
  return {
    range: { ...tp, first: msgs[0]!.offset, last: msgs[msgs.length - 1]!.offset },
    outputs,
    deadLetters: deadLetterMessages(o.topology, o.deadLetterTopic, dead, all, msgs),
  };
}

/** The batch event of the metrics: records in, outputs, the last offset and the record times (for latencies). */
export function batchEvent(
  events: WorkerEvents,
  batch: { topic: string; partition: number; highWatermark: string },
  segments: ReadonlyArray<Segment<FetchedMessage>>,
  records: number,
  outputs: Record<string, unknown[]>,
): Parameters<NonNullable<WorkerEvents['batch']>>[0] {
  const lastSegment = segments[segments.length - 1]!.messages;
  const last = lastSegment[lastSegment.length - 1]!;
  let timestamps: Float64Array | undefined;
  if (events.acknowledged) {
    timestamps = new Float64Array(records);
    let i = 0;
    for (const s of segments) for (const m of s.messages) timestamps[i++] = Number(m.timestamp);
  }
  return {
    topic: batch.topic,
    partition: batch.partition,
    records,
    highWatermark: batch.highWatermark,
    lastOffset: last.offset,
    lastTimestamp: Number(last.timestamp),
    outputs,
    timestamps,
  };
}
