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
