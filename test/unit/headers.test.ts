import {
  childTraceHeaders,
  deadLetterHeaders,
  originalHeaders,
  readDeadLetter,
  traceIdOf,
} from '../../pipelines/kafka/headers.ts';

describe('trace context', () => {
  test('keeps the trace id and flags of the input, with a new span id', () => {
    const parent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const out = childTraceHeaders({ traceparent: Buffer.from(parent), tracestate: 'vendor=x' });
    expect(out.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(out.traceparent).not.toBe(parent);
    expect(out.tracestate).toBe('vendor=x');
  });

  test.each([undefined, {}, { traceparent: 'garbage' }, { traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` }])(
    'starts a new trace when the input has no valid context (%p)',
    (input) => {
      const out = childTraceHeaders(input);
      expect(out.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(traceIdOf(out)).not.toBe('0'.repeat(32));
    },
  );
});

describe('dead-letter headers', () => {
  const provenance = {
    topic: 'orders.events',
    partition: 2,
    offset: '1234',
    timestamp: '1767225600000',
    topology: 'order-analytics',
    step: 'decode',
    errorClass: 'UnknownSchemaError',
    errorMessage: 'schema id 99 is not in the registry',
  };

  test('round-trip the provenance and keep the original headers apart', () => {
    const headers = deadLetterHeaders(provenance, { traceparent: 'tp', custom: Buffer.from('x') });
    expect(readDeadLetter(headers)).toEqual(provenance);
    expect(originalHeaders(headers)).toEqual({ traceparent: 'tp', custom: Buffer.from('x') });
  });

  test('cuts long error messages', () => {
    const headers = deadLetterHeaders({ ...provenance, errorMessage: 'x'.repeat(5000) }, undefined);
    expect(String(headers['pipelines.dlq.errorMessage']).length).toBeLessThanOrEqual(1001);
  });

  test('a record without provenance is not a dead letter', () => {
    expect(readDeadLetter({ traceparent: 'x' })).toBeUndefined();
  });
});
