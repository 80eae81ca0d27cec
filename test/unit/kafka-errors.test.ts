// Which client errors the worker retries: a broker that is away or slow, never data that is wrong.
import { isTransientKafkaError } from '../../pipelines/kafka/errors.ts';

describe('isTransientKafkaError', () => {
  it.each([
    ['message timed out', -192],
    ['transport', -195],
    ['producer queue full (a slow broker)', -184],
    ['not coordinator', 16],
    ['messages purged by an aborted transaction (queued)', -152],
    ['messages purged by an aborted transaction (in flight)', -151],
  ])('retries %s', (_what, code) => {
    expect(isTransientKafkaError({ code })).toBe(true);
  });

  it.each([
    ['message too large', 10],
    ['invalid record', 87],
    ['unknown', undefined],
  ])('does not retry %s', (_what, code) => {
    expect(isTransientKafkaError({ code })).toBe(false);
  });

  it('never retries a fatal error, whatever its code', () => {
    expect(isTransientKafkaError({ code: -184, fatal: true })).toBe(false);
  });
});
