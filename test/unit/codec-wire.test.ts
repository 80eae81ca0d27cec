// Wire format and subject naming strategies: pure functions, table-driven.

import {
  CodecError,
  frame,
  parseSubjectStrategy,
  peekSchemaId,
  readSchemaId,
  recordFullName,
  subjectName,
  writeHeader,
} from '../../pipelines/codec/index.ts';

describe('wire format', () => {
  it.each([0, 1, 255, 256, 65_536, 2_147_483_647])('frames and reads back schema id %i', (id) => {
    const body = Buffer.from([1, 2, 3]);
    const framed = frame(id, body);
    expect(framed.length).toBe(8);
    expect(framed[0]).toBe(0);
    expect(framed.readInt32BE(1)).toBe(id);
    expect(readSchemaId(framed)).toBe(id);
    expect(peekSchemaId(framed)).toBe(id);
    expect(framed.subarray(5)).toEqual(body);
  });

  it('writes the header big-endian at an offset', () => {
    const buf = Buffer.alloc(7, 0xff);
    writeHeader(buf, 0x01020304, 2);
    expect([...buf]).toEqual([0xff, 0xff, 0, 1, 2, 3, 4]);
  });

  it.each([
    ['empty', Buffer.alloc(0), 'TRUNCATED_MESSAGE'],
    ['4 bytes', Buffer.from([0, 0, 0, 1]), 'TRUNCATED_MESSAGE'],
    ['magic 1', Buffer.from([1, 0, 0, 0, 1, 2]), 'UNKNOWN_MAGIC_BYTE'],
    ['JSON text', Buffer.from('{"a":1}'), 'UNKNOWN_MAGIC_BYTE'],
  ])('rejects %s with %s, not retriable', (_name, buf, code) => {
    expect(peekSchemaId(buf)).toBeUndefined();
    try {
      readSchemaId(buf);
      throw new Error('no error');
    } catch (error) {
      expect(error).toBeInstanceOf(CodecError);
      expect((error as CodecError).code).toBe(code);
      expect((error as CodecError).retriable).toBe(false);
    }
  });

  it('peeks nothing in null or undefined (tombstones)', () => {
    expect(peekSchemaId(null)).toBeUndefined();
    expect(peekSchemaId(undefined)).toBeUndefined();
  });
});

describe('subject strategies', () => {
  const topic = 'orders';
  const recordName = 'com.orders.events.OrderPlaced';
  it.each([
    ['TopicName', { topic }, 'orders-value'],
    ['TopicName', { topic, kind: 'key' as const }, 'orders-key'],
    ['TopicName', { topic, recordName }, 'orders-value'],
    ['RecordName', { topic, recordName }, 'com.orders.events.OrderPlaced'],
    ['RecordName', { topic, recordName, kind: 'key' as const }, 'com.orders.events.OrderPlaced'],
    ['TopicRecordName', { topic, recordName }, 'orders-com.orders.events.OrderPlaced'],
  ] as const)('%s %j → %s', (strategy, input, expected) => {
    expect(subjectName(strategy, input)).toBe(expected);
  });

  it.each([
    ['RecordName', { topic }],
    ['TopicRecordName', { topic }],
    ['TopicRecordName', { topic: '', recordName }],
    ['TopicName', { topic: '' }],
  ] as const)('%s without what it needs throws', (strategy, input) => {
    expect(() => subjectName(strategy, input)).toThrow(/subject strategy needs/);
  });

  it.each([
    ['TopicName', 'TopicName'],
    ['TopicRecordNameStrategy', 'TopicRecordName'],
    ['io.confluent.kafka.serializers.subject.RecordNameStrategy', 'RecordName'],
    ['io.confluent.kafka.serializers.subject.TopicNameStrategy', 'TopicName'],
  ])('parses %s', (name, expected) => {
    expect(parseSubjectStrategy(name)).toBe(expected);
  });

  it('rejects an unknown strategy', () => {
    expect(() => parseSubjectStrategy('Random')).toThrow(/unknown subject strategy "Random"/);
  });

  it.each([
    [{ name: 'OrderPlaced', namespace: 'com.orders.events' }, 'com.orders.events.OrderPlaced'],
    [{ name: 'OrderPlaced' }, 'OrderPlaced'],
    [{ name: 'a.b.OrderPlaced', namespace: 'ignored' }, 'a.b.OrderPlaced'],
    [{ name: 'OrderPlaced', namespace: '' }, 'OrderPlaced'],
  ])('full name of %j is %s', (schema, expected) => {
    expect(recordFullName(schema)).toBe(expected);
  });
});
