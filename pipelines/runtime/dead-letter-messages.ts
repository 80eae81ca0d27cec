// A failed record as a message for the dead-letter topic: its original key, value and headers, with provenance
// headers (where it came from, which step failed, why). A topology without a dead-letter topic stops instead.
// A record too large for the dead-letter topic goes there without its value (its size and hash instead): a poison
// record must never stop the topology, and a message the producer refuses would (the batch cannot commit).
import { createHash } from 'node:crypto';

import { PipelinesError } from '../errors.ts';
import { type DeadLetterProvenance, deadLetterHeaders, type Headers } from '../kafka/headers.ts';
import type { KafkaMessage } from '../kafka/produce.ts';
import { mask } from '../secrets.ts';
import type { DeadLetter } from './plan.ts';

/**
 * What a dead letter may weigh, key, value and headers together: librdkafka's default `message.max.bytes` and the
 * broker's default `max.message.bytes` are both about 1 MB, with some room kept for the batch framing.
 */
export const DEAD_LETTER_MAX_BYTES = 1_000_000 - 4096;

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
    const provenance: DeadLetterProvenance = {
      topic: d.record.topic,
      partition: d.record.partition,
      offset: String(d.record.offset),
      timestamp: String(d.record.timestamp),
      topology,
      step: d.stepId,
      errorClass: d.errorClass,
      errorMessage: mask(d.message),
    };
    const key = m?.key ?? null;
    const value = m?.value ?? null;
    let headers = deadLetterHeaders(provenance, d.record.headers as Headers);
    if (value && bytesOf(key, headers) + value.length > DEAD_LETTER_MAX_BYTES) {
      headers = deadLetterHeaders(
        {
          ...provenance,
          valueOmitted: `the value (${value.length} bytes) is larger than a dead letter may be (${DEAD_LETTER_MAX_BYTES})`,
          valueBytes: value.length,
          valueSha256: createHash('sha256').update(value).digest('hex'),
        },
        d.record.headers as Headers,
      );
      return { key: bytesOf(key, headers) > DEAD_LETTER_MAX_BYTES ? null : key, value: null, headers };
    }
    return { key, value, headers };
  });
}

function bytesOf(key: Buffer | null | undefined, headers: Record<string, string | Buffer>): number {
  let n = key?.length ?? 0;
  for (const [k, v] of Object.entries(headers)) n += Buffer.byteLength(k) + Buffer.byteLength(v);
  return n;
}
