// The plan API a Kafka worker calls: synchronous batches, time from the caller, outputs per sink, dead letters
// by policy, branching, and decoded avsc records as input.

import { loadPlan } from '../../../pipelines/runtime/load.ts';
import { PipelineFailure, type SourceRecord } from '../../../pipelines/runtime/plan.ts';
import { loadAvsc } from '../../../pipelines/topology/avro.ts';
import { TopologyError } from '../../../pipelines/topology/diagnostics.ts';
import { placed, TOPOLOGIES, topology, writeTopology } from './helpers.ts';

const rec = (value: unknown, offset = 0, partition = 0): SourceRecord => ({
  topic: 'orders.events',
  partition,
  offset,
  key: null,
  value,
  timestamp: 1000,
  headers: {},
});
const schema = loadAvsc(`${TOPOLOGIES}/schemas/OrderPlaced-v2.avsc`);
const decode = (v: unknown) => schema.type.fromBuffer(schema.type.toBuffer(v));

describe('Plan', () => {
  it('takes records decoded by its reader types as they are, and others after a copy', async () => {
    const plan = await loadPlan(writeTopology(topology({ steps: '    - map: { c: event.data.channel }' })), {
      env: {},
    });
    const reader = plan.readerTypes.get('com.orders.events.OrderPlaced')!;
    const own = reader.fromBuffer(reader.toBuffer(placed({}, { channel: 'app' })));
    expect(plan.process([rec(own), rec(decode(placed({}, { channel: 'web' })))], 0).sinks['clickhouse:t']).toEqual([
      { c: 'app' },
      { c: 'web' },
    ]);
  });

  it('processes a batch synchronously and returns the rows per sink', async () => {
    const plan = await loadPlan(
      writeTopology(topology({ steps: '    - map: { orderId: event.data.orderId, amount: event.data.totalAmount }' })),
      { env: {} },
    );
    const result = plan.process([rec(decode(placed())), rec(decode(placed({}, { orderId: 'o2' })), 1)], 5000);
    expect(result).not.toBeInstanceOf(Promise);
    expect(result.sinks).toEqual({
      'clickhouse:t': [
        { orderId: 'o1', amount: 5 },
        { orderId: 'o2', amount: 5 },
      ],
    });
    expect(result.stats.records).toBe(2);
    expect(result.watermark).toBe(1000);
  });

  it.each([
    ['deadLetter', 1, 0],
    ['skip', 0, 1],
  ] as const)('onError: %s', async (onError, dead, skipped) => {
    const yaml = topology({ steps: '    - id: bad\n      map: { x: "event.data.orderId + string(1 / 0)" }' }).replace(
      'errors: { deadLetter: dlq }',
      `errors: { deadLetter: dlq, onError: ${onError} }`,
    );
    const plan = await loadPlan(writeTopology(yaml), { env: {} });
    const r = plan.process([rec(placed())], 0);
    expect(r.stats.deadLettered).toBe(dead);
    expect(r.stats.skipped).toBe(skipped);
    if (dead)
      expect(r.deadLetters[0]).toMatchObject({
        stepId: 'bad',
        errorClass: 'ExpressionError',
        retriable: false,
        record: { offset: 0 },
      });
  });

  it('onError: fail throws a PipelineFailure naming the step and the record', async () => {
    const yaml = topology({ steps: '    - id: bad\n      map: { x: "1 / 0" }' }).replace(
      'errors: { deadLetter: dlq }',
      'errors: { onError: fail }',
    );
    const plan = await loadPlan(writeTopology(yaml), { env: {} });
    expect(() => plan.process([rec(placed(), 7)], 0)).toThrow(PipelineFailure);
    expect(() => plan.process([rec(placed(), 7)], 0)).toThrow(/step 'bad' failed on orders.events\/0@7/);
  });

  it('branches: steps and sinks read the step named in `from`, each branch with its own variables', async () => {
    const yaml = topology({
      steps: [
        '    - id: all',
        '      filter: "true"',
        '    - id: small',
        '      enrich: { table: customers, key: event.data.customerId, as: who, onMissing: keep }',
        '    - id: ids',
        '      from: all',
        '      map: { orderId: event.data.orderId }',
      ].join('\n'),
      sinks: [
        '    - clickhouse: { table: a, from: small, columns: [who] }',
        '    - clickhouse: { table: b, from: ids }',
        '    - kafka: { topic: k, from: all, key: event.data.orderId, value: { format: json }, when: event.data.totalAmount > 100 }',
      ].join('\n'),
    });
    const plan = await loadPlan(writeTopology(yaml), { env: {} });
    const r = plan.process([rec(placed())], 0);
    expect(r.sinks['clickhouse:a']).toEqual([{ who: null }]);
    expect(r.sinks['clickhouse:b']).toEqual([{ orderId: 'o1' }]);
    expect(r.sinks['kafka:k']).toEqual([]);
    const big = plan.process([rec(placed({}, { totalAmount: 500 }))], 0);
    expect(big.sinks['kafka:k']).toEqual([
      { key: 'o1', value: expect.objectContaining({ eventType: 'OrderPlaced' }), headers: {} },
    ]);
  });

  it('tables are fed through an explicit API, keyed by string', async () => {
    const yaml = topology({
      steps:
        '    - id: who\n      enrich: { table: customers, key: event.data.customerId, as: c, onMissing: drop }\n    - map: { seg: c.segment }',
    });
    const plan = await loadPlan(writeTopology(yaml), { env: {} });
    plan.tables.upsert('customers', 'c1', { customerId: 'c1', name: 'A', segment: 'smb', country: 'FR' });
    expect(plan.process([rec(placed())], 0).sinks['clickhouse:t']).toEqual([{ seg: 'smb' }]);
    plan.tables.delete('customers', 'c1');
    expect(plan.process([rec(placed())], 0).sinks['clickhouse:t']).toEqual([]);
    expect(() => plan.tables.upsert('nope', 'k', {})).toThrow(/no table 'nope'/);
  });

  it('a revoked partition stops holding the watermark back', async () => {
    const plan = await loadPlan(writeTopology(topology()), { env: {} });
    plan.process(
      [
        { ...rec(placed(), 0, 0), timestamp: 5000 },
        { ...rec(placed(), 0, 1), timestamp: 1000 },
      ],
      0,
    );
    expect(plan.watermark).toBe(1000);
    plan.releasePartition(1);
    plan.tick(0);
    expect(plan.watermark).toBe(5000);
  });

  it('an assigned partition without records holds the watermark back until it is idle', async () => {
    const plan = await loadPlan(writeTopology(topology({ source: '    idleTimeout: 30s\n' })), { env: {} });
    plan.assignPartition(0, 0);
    plan.assignPartition(1, 0);
    plan.process([{ ...rec(placed(), 0, 0), timestamp: 5000 }], 20_000);
    expect(plan.watermark).toBe(Number.NEGATIVE_INFINITY);
    plan.tick(29_000);
    expect(plan.watermark).toBe(Number.NEGATIVE_INFINITY);
    plan.tick(31_000); // partition 1: assigned 31 s ago, nothing yet: idle
    expect(plan.watermark).toBe(5000);
  });

  it('loadPlan throws a user-facing TopologyError listing every problem', async () => {
    const file = writeTopology(topology({ steps: '    - filtr: "true"\n    - mapp: {}' }));
    await expect(loadPlan(file, { env: {} })).rejects.toThrow(TopologyError);
    await expect(loadPlan(file, { env: {} })).rejects.toMatchObject({
      userFacing: true,
      message: expect.stringMatching(/2 problem\(s\)[\s\S]*filtr[\s\S]*mapp/),
    });
  });
});
