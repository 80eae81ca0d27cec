// Repartition steps split a topology into stages (compile/stages.ts). The stages, chained through what their
// repartition sinks write (encoded, keyed to partitions, decoded as the next stage's records), give the read
// models the load generator's oracle computes from the same input, and the topics they need are named.
import { decodeValue } from '../../../pipelines/codec/decoder.ts';
import { checkFile } from '../../../pipelines/compile/compile.ts';
import { expectedReadModels } from '../../../pipelines/loadgen/expected.ts';
import { customerSnapshots, orderLifecycleStream } from '../../../pipelines/loadgen/orders.ts';
import { loadStages, ownedTopics } from '../../../pipelines/runtime/load.ts';
import type { Plan, SourceRecord } from '../../../pipelines/runtime/plan.ts';
import { type RepartitionRow, repartitionMessage } from '../../../pipelines/sinks/kafka/repartition.ts';
import { topology, writeTopology } from './helpers.ts';

const FILE = 'topologies/order-totals.yaml';
const PARTITIONS = 3;

/** A stable hash, standing in for the producer's partitioner: equal keys, one partition. */
const partitionOf = (key: string) => {
  let h = 0;
  for (const c of key) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h % PARTITIONS;
};

describe('stages of a topology with repartition steps', () => {
  it('are named from the group and the step: topics, groups, changelogs', async () => {
    const stages = await loadStages(FILE, { env: {} }, 'totals-7');
    expect(stages.map((s) => s.id)).toEqual(['source', 'by-segment', 'by-customer']);
    const [first, segment, customer] = stages.map((s) => s.plan);
    expect(first!.sinks.map((s) => [s.id, s.kind, s.config.topic])).toEqual([
      ['by-segment', 'repartition', 'totals-7.by-segment.repartition'],
      ['by-customer', 'repartition', 'totals-7.by-customer.repartition'],
    ]);
    expect(first!.hasState).toBe(false);
    expect(segment!.topology.spec.source).toMatchObject({
      topic: 'totals-7.by-segment.repartition',
      group: 'totals-7.by-segment',
      value: { format: 'json' },
    });
    expect(segment!.topology.spec.source.eventTime).toBeUndefined();
    expect(segment!.steps.map((s) => s.id)).toEqual(['segment-minutes', 'segment-rows']);
    expect(customer!.steps.map((s) => s.id)).toEqual(['customer-totals']);
    expect(segment!.sinks.map((s) => s.id)).toEqual(['clickhouse:segment_revenue_final_1m']);
    // Only the first stage reads the lookup table.
    expect(segment!.tables.names()).toEqual([]);
    expect(first!.tables.names()).toEqual(['customers']);

    const topics = new Map(ownedTopics(stages).map((t) => [t.name, t]));
    expect(topics.get('totals-7.by-segment.repartition')).toMatchObject({ partitions: 3, cleanup: 'delete' });
    expect(topics.get('totals-7.by-segment.state')).toMatchObject({ partitions: 3, cleanup: 'compact' });
    expect(topics.get('totals-7.by-customer.state')).toMatchObject({ cleanup: 'compact' });
    expect(topics.has('orders.events')).toBe(true);
  });

  it('chained through their topics, compute what the oracle computes', async () => {
    const customers = customerSnapshots(200, 5);
    const events = [...orderLifecycleStream(4000, { seed: 11, customers: 200 })];
    const stages = (await loadStages(FILE, { env: {} })).map((s) => s.plan);
    for (const c of customers) stages[0]!.tables.upsert('customers', c.customerId, c);

    const outputs = new Map<string, unknown[]>();
    const offsets = new Map<string, number>();
    /** The rows a stage's repartition sinks wrote become the records of the stages that read them. */
    const route = (plan: Plan, result: ReturnType<Plan['process']>) => {
      for (const [sink, rows] of Object.entries(result.sinks)) {
        const s = plan.sinks.find((x) => x.id === sink)!;
        if (s.kind !== 'repartition') {
          outputs.set(sink, [...(outputs.get(sink) ?? []), ...rows]);
          continue;
        }
        const next = stages.find((p) => p.topology.spec.source.topic === s.config.topic)!;
        const written = (rows as RepartitionRow[]).map((row) => {
          const partition = partitionOf(row.key!);
          const at = `${s.config.topic}/${partition}`;
          const offset = offsets.get(at) ?? 0;
          offsets.set(at, offset + 1);
          return {
            topic: String(s.config.topic),
            partition,
            offset,
            key: row.key,
            // As the sink writes it and the next stage's decoder reads it; the timestamp is the producer's clock.
            value: decodeValue(repartitionMessage(row).value!),
            timestamp: Date.now(),
          };
        });
        run(next, written);
      }
    };
    /** One batch per partition, as the worker hands them out. */
    const run = (plan: Plan, records: SourceRecord[]) => {
      const byPartition = new Map<number, SourceRecord[]>();
      for (const r of records) byPartition.set(r.partition, [...(byPartition.get(r.partition) ?? []), r]);
      for (const batch of byPartition.values()) route(plan, plan.process(batch, 0));
    };
    for (let i = 0; i < events.length; i += 500) {
      const records = events.slice(i, i + 500).map((e, j) => ({
        topic: 'orders.events',
        partition: partitionOf(e.data.orderId),
        offset: i + j,
        key: e.data.orderId,
        value: e,
        timestamp: e.timestamp,
      }));
      run(stages[0]!, records);
    }
    // End of input, stage by stage: what a stage flushes reaches the next before that one ends.
    for (const plan of stages) route(plan, plan.flush(0));

    // A ReplacingMergeTree keeps the row with the most orders per key: so does this.
    const latest = (sink: string, key: (r: Record<string, unknown>) => string) => {
      const out = new Map<string, Record<string, unknown>>();
      for (const r of outputs.get(sink) as Array<Record<string, unknown>>) {
        const seen = out.get(key(r));
        if (!seen || Number(r.orders) >= Number(seen.orders)) out.set(key(r), r);
      }
      return out;
    };
    const cents = (x: unknown) => Math.round(Number(x) * 100);
    const expected = expectedReadModels(events, customers);
    const minutes = latest('clickhouse:segment_revenue_final_1m', (r) => `${r.window_start}|${r.segment}`);
    expect(minutes.size).toBe(expected.revenue_by_segment_1m.length);
    for (const e of expected.revenue_by_segment_1m) {
      const got = minutes.get(`${Date.parse(e.window_start)}|${e.segment}`);
      expect({
        ...e,
        revenue: cents(e.revenue),
        got: got && { orders: got.orders, revenue: cents(got.revenue) },
      }).toEqual({ ...e, revenue: cents(e.revenue), got: { orders: e.orders, revenue: cents(e.revenue) } });
    }
    const totals = latest('clickhouse:customer_totals', (r) => String(r.customer_id));
    expect(totals.size).toBe(expected.customer_ltv.length);
    for (const e of expected.customer_ltv) {
      const got = totals.get(e.customer_id)!;
      const row = [got.customer_id, got.orders, cents(got.revenue), got.first_order_at, got.last_order_at];
      expect(row).toEqual([
        e.customer_id,
        e.orders,
        cents(e.revenue),
        Date.parse(e.first_order_at),
        Date.parse(e.last_order_at),
      ]);
    }
  });

  it('forget the windows of a partition given away: none closes there, nothing of it reaches a changelog', async () => {
    const [, segment] = (await loadStages(FILE, { env: {} })).map((s) => s.plan);
    const staged = (partition: number, offset: number, seg: string, at: number): SourceRecord => ({
      topic: segment!.topics.source,
      partition,
      offset,
      key: seg,
      value: { time: at, vars: { orderId: `o${offset}`, customerId: 'c', segment: seg, amount: 1, at } },
      timestamp: 0,
    });
    segment!.trackChanges();
    segment!.process([staged(0, 0, 'smb', 61_000)], 0);
    segment!.process([staged(1, 0, 'enterprise', 61_000)], 0);
    segment!.drainChanges();
    segment!.releasePartition(1);
    // Partition 0 moves event time past the minute: only its own window closes.
    const r = segment!.process([staged(0, 1, 'smb', 200_000)], 0);
    expect(r.sinks['clickhouse:segment_revenue_final_1m']!.map((x) => (x as { segment: string }).segment)).toEqual([
      'smb',
    ]);
    expect(segment!.drainChanges().filter(([k]) => k.includes('enterprise'))).toEqual([]);
  });

  it('refuse a ClickHouse sink in the stage of an exactly-once repartition, and say how to fix it', () => {
    const steps = ['    - id: rekey', '      repartition: { key: event.data.customerId }'].join('\n');
    const sinks = [
      '    - clickhouse:',
      '        from: source',
      '        table: raw',
      '        columns: { id: String }',
      '        engine: { type: MergeTree, orderBy: [id] }',
    ].join('\n');
    const { diagnostics } = checkFile(writeTopology(topology({ steps, sinks })), { env: {} });
    const d = diagnostics.find((x) => x.code === 'repartition-exactly-once');
    expect(d).toMatchObject({ severity: 'error', hint: expect.stringContaining('exactlyOnce: false') });
    const relaxed = steps.replace('customerId }', 'customerId, exactlyOnce: false }');
    const again = checkFile(writeTopology(topology({ steps: relaxed, sinks })), { env: {} });
    expect(again.diagnostics.filter((x) => x.code === 'repartition-exactly-once')).toEqual([]);
  });

  it('get a repartition step before a stateful step keyed by other than the source, when the source says its key', async () => {
    const steps = [
      '    - id: per-order',
      '      fold: { key: event.data.orderId, by: "\'OrderPlaced\'", on: { OrderPlaced: { n: "1" } } }',
      '    - id: per-customer',
      '      from: source',
      '      fold: { key: event.data.customerId, by: "\'OrderPlaced\'", on: { OrderPlaced: { n: "1" } } }',
      '    - id: partials',
      '      from: source',
      '      aggregate: { window: { tumbling: 1m }, groupBy: [event.data.customerId], measures: { n: count() }, emit: perBatch }',
      '    - id: rekeyed',
      '      from: source',
      '      repartition: { key: event.data.customerId }',
      '    - id: after-rekey',
      '      dedupe: { key: event.data.customerId }',
    ].join('\n');
    const sinks = '    - kafka: { from: per-customer, topic: out, value: { format: json }, exactlyOnce: true }';
    const at = (partitionedBy: string) =>
      writeTopology(topology({ steps, sinks, source: `    partitionedBy: ${partitionedBy}\n` }));
    const { diagnostics, checked } = checkFile(at('event.data.orderId'), { env: {} });
    expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    // Only the fold by customer: the fold by order is keyed as the source, partials need no partitioning, and
    // the dedupe follows a repartition by its own key.
    expect(checked!.steps.map((s) => [s.id, s.from])).toEqual([
      ['per-order', 'source'],
      ['per-customer-by-key', 'source'],
      ['per-customer', 'per-customer-by-key'],
      ['partials', 'source'],
      ['rekeyed', 'source'],
      ['after-rekey', 'rekeyed'],
    ]);
    const stages = await loadStages(at('event.data.orderId'), { env: {} });
    expect(stages.map((s) => s.id)).toEqual(['source', 'per-customer-by-key', 'rekeyed']);
    expect(stages[1]!.plan.steps.map((s) => s.id)).toEqual(['per-customer']);
    // Without partitionedBy nothing is known of the source's key: nothing is inserted.
    const plain = checkFile(writeTopology(topology({ steps, sinks })), { env: {} });
    expect(plain.checked!.steps.map((s) => s.id)).not.toContain('per-customer-by-key');
    // The declared key is an expression on the source, checked as one.
    const bad = checkFile(at('event.data.ordrId'), { env: {} });
    expect(bad.diagnostics.find((d) => d.path === 'spec.source.partitionedBy')?.severity).toBe('error');
  });
});
