// Records on the order topic that are not order events, or not readable as one: what a worker must set aside (dead
// letters) without stopping or losing the events around them. Deterministic for a seed, spread through a stream.
import { type OrderEvent, type OrderPlaced, orderPlacedStream } from './orders.ts';

export const POISON_KINDS = ['not-avro', 'unknown-schema-id', 'truncated-avro', 'empty-value', 'key-not-utf8'] as const;
export type PoisonKind = (typeof POISON_KINDS)[number];

export interface PoisonRecord {
  kind: PoisonKind;
  key: Buffer;
  value: Buffer;
}

export interface PoisonOptions {
  /** Seed of the valid OrderPlaced events some kinds are made from (default 1). */
  seed?: number;
  /** The kinds, taken in turn (default all of POISON_KINDS). */
  kinds?: readonly PoisonKind[];
  /** The producer's encoder (orderEventEncoder): the valid bytes that some kinds break. */
  encodeValid: (e: OrderEvent) => Buffer;
  /** Keys are `${prefix}-${i}`, and so are the order and event ids of the valid events (default 'poison'). */
  prefix?: string;
}

/** A schema id no registry holds (registries count up from 1): 0x7f7f7f00 + i. */
const UNKNOWN_ID = 0x7f7f7f00;

/** What record i of a kind holds, from its valid OrderPlaced bytes (made only for the kinds that use them). */
const MAKE: Record<PoisonKind, (i: number, id: string, valid: () => Buffer) => { key?: Buffer; value: Buffer }> = {
  // Text without the Confluent header: the decoder's UNKNOWN_MAGIC_BYTE.
  'not-avro': (_i, id) => ({ value: Buffer.from(`${id}: this is not Avro`) }),
  // A well-framed Avro body under an id the registry does not hold: UNKNOWN_SCHEMA_ID once prepared.
  'unknown-schema-id': (i, _id, valid) => {
    const value = Buffer.from(valid());
    value.writeInt32BE(UNKNOWN_ID + i, 1);
    return { value };
  },
  // A valid message cut in half, header and id kept: UNDECODABLE (the body ends too soon).
  'truncated-avro': (_i, _id, valid) => {
    const whole = valid();
    return { value: Buffer.from(whole.subarray(0, Math.floor(whole.length / 2))) };
  },
  // Zero bytes, no header at all: TRUNCATED_MESSAGE (or a tombstone, if the client hands it over as null).
  'empty-value': () => ({ value: Buffer.alloc(0) }),
  // A valid OrderPlaced under a key that is not UTF-8 (0xff and 0xfe never occur in it): KEY_NOT_UTF8.
  'key-not-utf8': (i, _id, valid) => ({ key: Buffer.from([0xff, 0xfe, ...Buffer.from(String(i))]), value: valid() }),
};

/** `count` poison records, the kinds in turn; record i has key `${prefix}-${i}` (bytes of its own for key-not-utf8). */
export function poisonRecords(count: number, options: PoisonOptions): PoisonRecord[] {
  const kinds = options.kinds ?? POISON_KINDS;
  if (kinds.length === 0) throw new RangeError('poisonRecords: kinds is empty');
  const prefix = options.prefix ?? 'poison';
  const templates = [...orderPlacedStream(count, { seed: options.seed ?? 1 })];
  return templates.map((template, i) => {
    const kind = kinds[i % kinds.length]!;
    const id = `${prefix}-${i}`;
    const placed: OrderPlaced = { ...template, eventId: id, data: { ...template.data, orderId: id } };
    const made = MAKE[kind](i, id, () => options.encodeValid(placed));
    return { kind, key: made.key ?? Buffer.from(id), value: made.value };
  });
}

/**
 * The events with the poison records spread evenly among them: record j after event ⌊(j+1)·total/(n+1)⌋, `total`
 * being the number of events (records still due when the events run out come at the end).
 */
export function* withPoison(
  events: Iterable<OrderEvent>,
  poison: readonly PoisonRecord[],
  total: number,
): Generator<OrderEvent | PoisonRecord> {
  const dueAfter = (j: number) => Math.floor(((j + 1) * total) / (poison.length + 1));
  let i = 0;
  let j = 0;
  for (const e of events) {
    yield e;
    i++;
    while (j < poison.length && dueAfter(j) <= i) yield poison[j++]!;
  }
  while (j < poison.length) yield poison[j++]!;
}
