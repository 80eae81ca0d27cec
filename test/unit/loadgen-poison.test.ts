// Poison records, decoded offline as a worker decodes them (the codec over an in-memory registry): each kind fails
// the way its comment says, except key-not-utf8, whose value is a valid order event.
import {
  AvroDecoder,
  AvroEncoder,
  CodecError,
  parseAvroSchema,
  RegistryError,
  type SchemaCheck,
  type SchemaText,
  schemaText,
} from '../../pipelines/codec/index.ts';
import { type OrderEvent, type OrderPlaced, orderLifecycleStream, readSchema } from '../../pipelines/loadgen/orders.ts';
import { POISON_KINDS, type PoisonRecord, poisonRecords, withPoison } from '../../pipelines/loadgen/poison.ts';

const V1_ID = 1;
const v1 = readSchema('OrderPlaced');
const check: SchemaCheck = {
  subject: 'orders-com.orders.events.OrderPlaced',
  schemaId: V1_ID,
  version: 1,
  mode: { level: 'NONE', source: 'global' },
  action: 'existing',
};
const encoder = new AvroEncoder(check, parseAvroSchema(v1));
const encodeValid = (e: OrderEvent) => encoder.encode(e);

// The worker's decoder: the topologies' reader (v2), the writer (v1) known by id, any other id unknown.
const registry = {
  getSchemaById: async (id: number): Promise<SchemaText> => {
    if (id !== V1_ID) throw new RegistryError('REGISTRY_REJECTED', 'not found', { status: 404, request: 'GET' });
    return { id, schema: schemaText(v1), schemaType: 'AVRO', references: [] };
  },
};

async function decodeCode(value: Buffer): Promise<string | { decoded: unknown }> {
  const decoder = new AvroDecoder({ registry, readers: [readSchema('OrderPlacedV2')] });
  await decoder.prepare([value]);
  try {
    return { decoded: decoder.decode(value) };
  } catch (error) {
    expect(error).toBeInstanceOf(CodecError);
    expect((error as CodecError).retriable).toBe(false); // the record's policy decides: dead letter
    return (error as CodecError).code;
  }
}

test('the kinds come in turn, keyed poison-<i> unless the key is the poison', () => {
  const records = poisonRecords(12, { encodeValid });
  expect(records.map((r) => r.kind)).toEqual([...POISON_KINDS, ...POISON_KINDS, 'not-avro', 'unknown-schema-id']);
  expect(records.filter((r) => r.kind !== 'key-not-utf8').map((r) => r.key.toString())).toEqual(
    records.flatMap((r, i) => (r.kind === 'key-not-utf8' ? [] : [`poison-${i}`])),
  );
  const custom = poisonRecords(4, { encodeValid, kinds: ['empty-value', 'not-avro'], prefix: 'bad' });
  expect(custom.map((r) => [r.kind, r.key.toString()])).toEqual([
    ['empty-value', 'bad-0'],
    ['not-avro', 'bad-1'],
    ['empty-value', 'bad-2'],
    ['not-avro', 'bad-3'],
  ]);
});

test('seeded: the same seed gives the same bytes', () => {
  const bytes = (records: PoisonRecord[]) => records.map((r) => [r.key.toString('hex'), r.value.toString('hex')]);
  expect(bytes(poisonRecords(10, { seed: 3, encodeValid }))).toEqual(
    bytes(poisonRecords(10, { seed: 3, encodeValid })),
  );
  expect(bytes(poisonRecords(10, { seed: 4, encodeValid }))).not.toEqual(
    bytes(poisonRecords(10, { seed: 3, encodeValid })),
  );
});

test.each([
  ['not-avro', 'UNKNOWN_MAGIC_BYTE'],
  ['unknown-schema-id', 'UNKNOWN_SCHEMA_ID'],
  ['truncated-avro', 'UNDECODABLE'],
  ['empty-value', 'TRUNCATED_MESSAGE'],
] as const)('%s fails decoding with %s', async (kind, code) => {
  const records = poisonRecords(10, { encodeValid, kinds: [kind] });
  for (const r of records) expect(await decodeCode(r.value)).toBe(code);
});

test('unknown-schema-id and truncated-avro keep the wire header: magic byte 0 and an id', () => {
  const valid: Buffer[] = [];
  const keep = (e: OrderEvent) => {
    valid.push(encodeValid(e));
    return valid.at(-1)!;
  };
  const [unknown, truncated] = poisonRecords(2, { encodeValid: keep, kinds: ['unknown-schema-id', 'truncated-avro'] });
  expect(unknown!.value[0]).toBe(0);
  expect(unknown!.value.readInt32BE(1)).toBe(0x7f7f7f00);
  expect(unknown!.value.subarray(5)).toEqual(valid[0]!.subarray(5)); // only the id is wrong
  expect(truncated!.value).toEqual(valid[1]!.subarray(0, Math.floor(valid[1]!.length / 2)));
  expect(truncated!.value.readInt32BE(1)).toBe(V1_ID);
});

test('key-not-utf8: the key is no UTF-8 at all, the value a valid OrderPlaced of its own order id', async () => {
  const records = poisonRecords(10, { encodeValid, kinds: ['key-not-utf8'] });
  const strict = new TextDecoder('utf-8', { fatal: true });
  for (const [i, r] of records.entries()) {
    expect(r.key.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xfe]));
    expect(() => strict.decode(r.key)).toThrow(/not valid/);
    // What the worker makes of it (m.key.toString(), pipelines/runtime/segment.ts): replacement characters.
    expect(r.key.toString()).toBe(`\ufffd\ufffd${i}`);
    const read = await decodeCode(r.value);
    expect(read).toEqual({ decoded: expect.objectContaining({ eventId: `poison-${i}`, eventType: 'OrderPlaced' }) });
    expect((read as { decoded: OrderPlaced }).decoded.data.orderId).toBe(`poison-${i}`);
  }
});

test('withPoison spreads the records evenly through the events, which keep their order', () => {
  const events = [...orderLifecycleStream(100, { seed: 2 })];
  const poison = poisonRecords(4, { encodeValid });
  const out = [...withPoison(events, poison, events.length)];
  expect(out.filter((x) => !('eventType' in x))).toEqual(poison);
  expect(out.filter((x) => 'eventType' in x)).toEqual(events);
  const at = out.flatMap((x, i) => ('eventType' in x ? [] : [i]));
  const gap = events.length / (poison.length + 1);
  for (const [j, position] of at.entries()) expect(Math.abs(position - (j + 1) * gap)).toBeLessThanOrEqual(j + 2);
  // A shorter stream than announced: the rest at the end, none lost.
  expect([...withPoison(events.slice(0, 3), poison, 1000)].slice(3)).toEqual(poison);
});
