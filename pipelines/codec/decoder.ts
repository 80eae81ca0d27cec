// The decoder contract of a source: values of a batch are prepared together (schemas fetched once, async), then
// decoded one by one synchronously in the batch loop. The Avro codec is one; JSON values need no preparing.

export interface Decoder {
  prepare(values: Iterable<Buffer | null | undefined>): Promise<void>;
  decode(value: Buffer): unknown;
}

export const jsonDecoder: Decoder = {
  prepare: async () => {},
  decode: (value) => JSON.parse(value.toString('utf8')),
};

// Values are JSON; the few non-JSON values an Avro event carries are tagged so that they come back as they were.
export function encodeValue(v: unknown): Buffer {
  return Buffer.from(
    JSON.stringify(v, function (this: Record<string, unknown>, k, x) {
      const raw = this[k];
      if (typeof raw === 'bigint') return { $bigint: raw.toString() };
      if (raw instanceof Date) return { $date: raw.getTime() };
      if (raw instanceof Uint8Array) return { $bytes: Buffer.from(raw).toString('base64') };
      if (typeof raw === 'number' && !Number.isFinite(raw)) return { $number: String(raw) };
      return x;
    }),
  );
}

export function decodeValue(b: Buffer): unknown {
  return JSON.parse(b.toString('utf8'), (_k, x) => {
    if (x && typeof x === 'object' && !Array.isArray(x)) {
      const keys = Object.keys(x);
      if (keys.length === 1) {
        if (keys[0] === '$bigint') return BigInt(x.$bigint);
        if (keys[0] === '$date') return new Date(x.$date);
        if (keys[0] === '$bytes') return Buffer.from(x.$bytes, 'base64');
        if (keys[0] === '$number') return Number(x.$number);
      }
    }
    return x;
  });
}

/** Values written by encodeValue: the state changelog's entries, the records of a repartition topic. */
export const taggedJsonDecoder: Decoder = {
  prepare: async () => {},
  decode: decodeValue,
};
