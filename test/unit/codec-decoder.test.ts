// Decoder and encoder against an in-memory schema source: resolution by record name, typed errors, caching.

import avro from 'avsc';
import {
  AvroDecoder,
  AvroEncoder,
  CodecError,
  frame,
  RegistryError,
  type SchemaCheck,
  type SchemaText,
} from '../../pipelines/codec/index.ts';
import {
  orderCancelled,
  orderPlacedV1,
  orderPlacedV2,
  orderShipped,
  placed,
  shipped,
} from '../fixtures/codec/order-events.ts';

class MemorySource {
  readonly schemas = new Map<number, object>();
  calls: number[] = [];
  failNext: Error | undefined;
  getSchemaById = async (id: number): Promise<SchemaText> => {
    this.calls.push(id);
    if (this.failNext) {
      const error = this.failNext;
      this.failNext = undefined;
      throw error;
    }
    const schema = this.schemas.get(id);
    if (!schema) {
      throw new RegistryError('REGISTRY_REJECTED', 'not found', { status: 404, errorCode: 40403, request: 'GET' });
    }
    return { id, schema: JSON.stringify(schema), schemaType: 'AVRO', references: [] };
  };
}

function encodeWith(id: number, schema: object, value: unknown): Buffer {
  return frame(id, avro.Type.forSchema(schema as avro.Schema).toBuffer(value));
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CodecError);
    expect((error as CodecError).retriable).toBe(false);
    return (error as CodecError).code;
  }
  return undefined;
}

describe('AvroDecoder', () => {
  let source: MemorySource;
  beforeEach(() => {
    source = new MemorySource();
    source.schemas.set(1, orderPlacedV1);
    source.schemas.set(2, orderPlacedV2);
    source.schemas.set(3, orderShipped);
    source.schemas.set(4, orderCancelled);
  });

  it('reads v1 and v2 writers interleaved through the v2 reader, timestamps as numbers', async () => {
    const decoder = new AvroDecoder({ registry: source, readers: [orderPlacedV2] });
    const batch = [
      encodeWith(1, orderPlacedV1, placed(1)),
      encodeWith(2, orderPlacedV2, placed(2, { channel: 'web' })),
      encodeWith(1, orderPlacedV1, placed(3)),
    ];
    await decoder.prepare(batch);
    const values = batch.map((b) => decoder.decode(b)) as Array<Record<string, unknown>>;
    expect(values.map((v) => v.channel)).toEqual([null, 'web', null]);
    expect(values[0]).toMatchObject({ ...placed(1), channel: null });
    expect(typeof values[0]!.timestamp).toBe('number');
    expect(decoder.describe(batch[0]!)).toEqual({
      schemaId: 1,
      writerName: 'com.orders.events.OrderPlaced',
      readerName: 'com.orders.events.OrderPlaced',
      readWithWriter: false,
    });
  });

  it('reads v2 data through the v1 reader (the new field is dropped)', async () => {
    const decoder = new AvroDecoder({ registry: source, readers: [orderPlacedV1] });
    const buf = encodeWith(2, orderPlacedV2, placed(7, { channel: 'app' }));
    await decoder.prepare([buf]);
    const value = decoder.decode(buf) as Record<string, unknown>;
    expect(value).toMatchObject(placed(7));
    expect('channel' in value).toBe(false);
  });

  it('fetches each schema id once, across batches and duplicates', async () => {
    const decoder = new AvroDecoder({ registry: source, readers: [orderPlacedV2] });
    const a = encodeWith(1, orderPlacedV1, placed(1));
    const b = encodeWith(2, orderPlacedV2, placed(2));
    await decoder.prepare([a, a, b, null, undefined]);
    await decoder.prepare([b, a]);
    expect(source.calls.sort()).toEqual([1, 2]);
  });

  it('picks the reader by the writer full name on a multi-event topic', async () => {
    const decoder = new AvroDecoder({ registry: source, readers: [orderPlacedV2, orderShipped] });
    const batch = [encodeWith(1, orderPlacedV1, placed(1)), encodeWith(3, orderShipped, shipped(1))];
    await decoder.prepare(batch);
    expect(decoder.decode(batch[0]!)).toMatchObject(placed(1));
    expect(decoder.decode(batch[1]!)).toMatchObject(shipped(1));
    expect(decoder.describe(batch[1]!).readerName).toBe('com.orders.events.OrderShipped');
  });

  it('fails a writer without reader with NO_READER_FOR_RECORD, or reads it as written on request', async () => {
    const buf = encodeWith(4, orderCancelled, {
      eventId: 'e',
      eventType: 'OrderCancelled',
      timestamp: 1,
      data: { orderId: 'o' },
    });
    const strict = new AvroDecoder({ registry: source, readers: [orderPlacedV2] });
    await strict.prepare([buf]);
    expect(codeOf(() => strict.decode(buf))).toBe('NO_READER_FOR_RECORD');
    const lenient = new AvroDecoder({ registry: source, readers: [orderPlacedV2], unknownRecord: 'writer' });
    await lenient.prepare([buf]);
    expect(lenient.decode(buf)).toMatchObject({ eventType: 'OrderCancelled', data: { orderId: 'o' } });
    expect(lenient.describe(buf).readWithWriter).toBe(true);
  });

  it('reads with the writer schema when no readers are given (generic mode)', async () => {
    const decoder = new AvroDecoder({ registry: source });
    const buf = encodeWith(2, orderPlacedV2, placed(5, { channel: 'x' }));
    await decoder.prepare([buf]);
    expect(decoder.decode(buf)).toMatchObject({ ...placed(5), channel: 'x' });
  });

  it('matches a writer to a reader through the reader aliases', async () => {
    source.schemas.set(9, { ...orderPlacedV1, name: 'LegacyOrderPlaced' });
    const decoder = new AvroDecoder({
      registry: source,
      readers: [{ ...orderPlacedV2, aliases: ['LegacyOrderPlaced'] }],
    });
    const buf = encodeWith(9, { ...orderPlacedV1, name: 'LegacyOrderPlaced' }, placed(1));
    await decoder.prepare([buf]);
    expect(decoder.decode(buf)).toMatchObject({ ...placed(1), channel: null });
  });

  it('gives typed errors for bad headers, unknown ids, unprepared ids and undecodable bytes', async () => {
    const decoder = new AvroDecoder({ registry: source, readers: [orderPlacedV2] });
    const good = encodeWith(1, orderPlacedV1, placed(1));
    const unknown = encodeWith(777, orderPlacedV1, placed(1));
    const garbage = Buffer.concat([good.subarray(0, 5), Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x41])]);
    const trailing = Buffer.concat([good, Buffer.from([0])]);
    const truncated = good.subarray(0, good.length - 3);
    await decoder.prepare([good, unknown, garbage, Buffer.from('x'), Buffer.from([7, 0, 0, 0, 1, 2])]);
    expect(codeOf(() => decoder.decode(Buffer.from([0, 0])))).toBe('TRUNCATED_MESSAGE');
    expect(codeOf(() => decoder.decode(Buffer.from([7, 0, 0, 0, 1, 2])))).toBe('UNKNOWN_MAGIC_BYTE');
    expect(codeOf(() => decoder.decode(unknown))).toBe('UNKNOWN_SCHEMA_ID');
    expect(codeOf(() => decoder.decode(encodeWith(2, orderPlacedV2, placed(1))))).toBe('SCHEMA_NOT_PREPARED');
    expect(codeOf(() => decoder.decode(garbage))).toBe('UNDECODABLE');
    expect(codeOf(() => decoder.decode(trailing))).toBe('UNDECODABLE');
    expect(codeOf(() => decoder.decode(truncated))).toBe('UNDECODABLE');
    expect(decoder.decode(good)).toMatchObject(placed(1));
  });

  it('asks again for an unknown id only after unknownIdRetryMs', async () => {
    let now = 1_000;
    const decoder = new AvroDecoder({
      registry: source,
      readers: [orderPlacedV2],
      unknownIdRetryMs: 100,
      now: () => now,
    });
    const buf = encodeWith(50, orderPlacedV1, placed(1));
    await decoder.prepare([buf]);
    await decoder.prepare([buf]);
    expect(source.calls).toEqual([50]);
    now += 150;
    source.schemas.set(50, orderPlacedV1);
    await decoder.prepare([buf]);
    expect(decoder.decode(buf)).toMatchObject(placed(1));
  });

  it('lets prepare() throw retriable registry errors and recovers on the next call', async () => {
    const decoder = new AvroDecoder({ registry: source, readers: [orderPlacedV2] });
    const buf = encodeWith(1, orderPlacedV1, placed(1));
    source.failNext = new RegistryError('REGISTRY_UNAVAILABLE', 'down', { request: 'GET' });
    await expect(decoder.prepare([buf])).rejects.toMatchObject({ code: 'REGISTRY_UNAVAILABLE', retriable: true });
    await decoder.prepare([buf]);
    expect(decoder.decode(buf)).toMatchObject(placed(1));
  });

  it('reports a writer that cannot be resolved into the reader as WRITER_NOT_READABLE', async () => {
    source.schemas.set(20, { ...orderPlacedV1, fields: [...orderPlacedV1.fields.slice(0, 2)] });
    const decoder = new AvroDecoder({ registry: source, readers: [orderPlacedV2] });
    const report = await decoder.preload([1, 2, 20, 404]);
    expect(report.map((r) => r.error?.code)).toEqual([
      undefined,
      undefined,
      'WRITER_NOT_READABLE',
      'UNKNOWN_SCHEMA_ID',
    ]);
    expect(report[2]!.error!.message).toMatch(
      /no matching field for default-less com\.orders\.events\.OrderPlaced\.timestamp/,
    );
  });

  it('refuses unnamed reader schemas and two readers for one name', () => {
    expect(() => new AvroDecoder({ registry: source, readers: ['"string"'] })).toThrow(/named type/);
    expect(() => new AvroDecoder({ registry: source, readers: [orderPlacedV1, orderPlacedV2] })).toThrow(
      /two reader schemas/,
    );
  });
});

describe('AvroEncoder', () => {
  const check: SchemaCheck = {
    subject: 'orders-value',
    schemaId: 42,
    version: 1,
    mode: { level: 'BACKWARD', source: 'subject' },
    action: 'existing',
  };
  const type = avro.Type.forSchema(orderPlacedV2 as avro.Schema);

  it('frames values with the schema id and round-trips them', () => {
    const encoder = new AvroEncoder(check, type);
    const a = encoder.encode(placed(1));
    const b = encoder.encode(placed(2, { channel: 'web' }));
    expect(a.readInt32BE(1)).toBe(42);
    expect(a[0]).toBe(0);
    expect(type.fromBuffer(a.subarray(5))).toMatchObject({ ...placed(1), channel: null });
    expect(type.fromBuffer(b.subarray(5))).toMatchObject({ ...placed(2), channel: 'web' });
    expect(a.buffer === b.buffer && a.byteOffset === b.byteOffset).toBe(false);
  });

  it('grows its scratch buffer for big values', () => {
    const encoder = new AvroEncoder(check, type, 16);
    const channel = 'x'.repeat(100_000);
    const big = placed(1, { channel });
    const out = encoder.encode(big);
    expect(type.fromBuffer(out.subarray(5))).toMatchObject({ channel });
    expect(type.fromBuffer(encoder.encode(placed(3)).subarray(5))).toMatchObject(placed(3));
  });

  it('throws INVALID_VALUE naming the bad paths (a Date is not a timestamp)', () => {
    const encoder = new AvroEncoder(check, type);
    try {
      encoder.encode({ ...placed(1), timestamp: new Date(0), data: { ...placed(1).data, orderId: 5 } });
      throw new Error('no error');
    } catch (error) {
      expect(error).toMatchObject({ code: 'INVALID_VALUE', retriable: false, subject: 'orders-value', schemaId: 42 });
      expect((error as Error).message).toMatch(/timestamp: expected long, got a Date/);
      expect((error as Error).message).toMatch(/data\.orderId: expected string, got 5/);
    }
  });
});
