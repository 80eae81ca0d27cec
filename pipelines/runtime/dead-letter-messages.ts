// A failed record as a message for the dead-letter topic: its original key, value and headers, with provenance
// headers (where it came from, which step failed, why). A topology without a dead-letter topic stops instead.

import { PipelinesError } from '../errors.ts';
import { deadLetterHeaders, type Headers } from '../kafka/headers.ts';
import { mask } from '../secrets.ts';
import type { KafkaMessage } from '../sinks/kafka/sink.ts';
import type { DeadLetter } from './plan.ts';

/** The message a record was read from. */
export interface RawMessage {
  key: Buffer | null | undefined;
  value: Buffer | null;
}

export function deadLetterMessages(
  topology: string,
  hasTopic: boolean,
  dead: readonly DeadLetter[],
  records: readonly object[],
  raws: readonly RawMessage[],
): KafkaMessage[] {
  if (dead.length === 0) return [];
  if (!hasTopic) {
    const d = dead[0]!;
    throw new PipelinesError(
      'NO_DEAD_LETTER_TOPIC',
      `record ${d.record.topic}/${d.record.partition}@${String(d.record.offset)} failed at step '${d.stepId}' ` +
        `(${d.errorClass}: ${d.message}) and the topology has no dead-letter topic: ` +
        'set spec.errors.deadLetter, fix the data, or skip it by resetting the group offset',
    );
  }
  // By the record itself: a step may dead-letter a record it held from an earlier batch (then no raw is here).
  const raw = new Map<object, RawMessage>();
  for (let i = 0; i < records.length; i++) raw.set(records[i]!, raws[i]!);
  return dead.map((d) => {
    const m = raw.get(d.record);
    return {
      key: m?.key ?? null,
      value: m?.value ?? null,
      headers: deadLetterHeaders(
        {
          topic: d.record.topic,
          partition: d.record.partition,
          offset: String(d.record.offset),
          timestamp: String(d.record.timestamp),
          topology,
          step: d.stepId,
          errorClass: d.errorClass,
          errorMessage: mask(d.message),
        },
        d.record.headers as Headers,
      ),
    };
  });
}
