// Several sources, joins and merges (steps/join.ts, steps/merge.ts, compile/stages.ts). The order-timeline example,
// run as one plan and as stages chained through their internal topics in a shuffled order, gives the timeline
// computed from the generated events alone (loadgen/timeline.ts); the join's rules are checked one by one.
import { decodeValue } from '../../../pipelines/codec/decoder.ts';
import { checkFile } from '../../../pipelines/compile/compile.ts';
import { seededRandom } from '../../../pipelines/loadgen/orders.ts';
import { expectedTimeline, type TimelineRow, timelineEvents } from '../../../pipelines/loadgen/timeline.ts';
import { loadPlan, loadStages, ownedTopics } from '../../../pipelines/runtime/load.ts';
import type { Plan, SourceRecord } from '../../../pipelines/runtime/plan.ts';
import { type RepartitionRow, repartitionMessage } from '../../../pipelines/sinks/kafka/repartition.ts';
import { TopologyTestDriver } from '../../../pipelines/testing/driver.ts';
import { writeTopology } from './helpers.ts';

const FILE = 'topologies/order-timeline.yaml';
const PARTITIONS = 3;
const TOPICS = { orders: 'orders.placed', payments: 'payments.captured', shipments: 'shipments.sent' };

const partitionOf = (key: string) => {
  let h = 0;
  for (const c of key) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h % PARTITIONS;
};

/** A sink row as the oracle writes it: times in epoch ms, amounts in cents. */
const row = (r: Record<string, unknown>) => ({
  ...(r as unknown as TimelineRow),
  amount: Math.round(Number(r.amount) * 100),
});
const sorted = (rows: Array<Record<string, unknown>>) =>
  rows.map(row).sort((a, b) => a.order_id.localeCompare(b.order_id));

/** The events of the three topics as records, each topic's in its own order. */
function records(events: ReturnType<typeof timelineEvents>): Record<keyof typeof TOPICS, SourceRecord[]> {
  const offsets = new Map<string, number>();
  const as = (topic: string, list: Array<{ timestamp: number; data: { orderId: string } }>) =>
    list.map((e) => {
      const partition = partitionOf(e.data.orderId);
      const offset = offsets.get(`${topic}/${partition}`) ?? 0;
      offsets.set(`${topic}/${partition}`, offset + 1);
      return { topic, partition, offset, key: e.data.orderId, value: e, timestamp: e.timestamp };
    });
  return {
    orders: as(TOPICS.orders, events.orders),
    payments: as(TOPICS.payments, events.payments),
    shipments: as(TOPICS.shipments, events.shipments),
  };
}

describe('a topology with several sources and joins', () => {
  it('runs as stages: one per source and one per join, named from the group', async () => {
    const stages = await loadStages(FILE, { env: {} }, 'tl');
    expect(stages.map((s) => s.id)).toEqual(['source', 'payments', 'shipments', 'paid', 'shipped']);
    const sinks = (i: number) => stages[i]!.plan.sinks.map((s) => [s.id, s.config.topic, s.config.key, s.config.input]);
    expect(sinks(0)).toEqual([['paid:source', 'tl.paid.repartition', 'event.data.orderId', 0]]);
    expect(sinks(1)).toEqual([['paid:payments', 'tl.paid.repartition', 'event.data.orderId', 1]]);
    expect(sinks(2)).toEqual([['shipped:shipments', 'tl.shipped.repartition', 'event.data.orderId', 1]]);
    expect(sinks(3)).toEqual([['shipped:paid', 'tl.shipped.repartition', 'event.data.orderId', 0]]);
    expect(stages[4]!.plan.sinks.map((s) => s.id)).toEqual(['clickhouse:order_timeline']);
    expect(stages[1]!.plan.topology.spec.source).toMatchObject({ topic: TOPICS.payments, group: 'tl.payments' });
    expect(stages[3]!.plan.topology.spec.source).toMatchObject({ topic: 'tl.paid.repartition', group: 'tl.paid' });
    expect(stages[3]!.plan.steps.map((s) => s.id)).toEqual(['paid']);
    expect(stages[4]!.plan.steps.map((s) => s.id)).toEqual(['shipped', 'timeline']);
    const topics = new Map(ownedTopics(stages).map((t) => [t.name, t]));
    for (const t of ['tl.paid.repartition', 'tl.shipped.repartition', TOPICS.payments, TOPICS.shipments])
      expect(topics.has(t)).toBe(true);
    expect(topics.get('tl.paid.state')).toMatchObject({ cleanup: 'compact' });
    expect(topics.get('tl.shipped.state')).toMatchObject({ cleanup: 'compact' });
  });

  it('chained through their topics, in a shuffled order, give the timeline the oracle computes', async () => {
    const events = timelineEvents(3000, { seed: 5, span: 2 * 3_600_000 });
    const expected = expectedTimeline(events);
    // Not a vacuous timeline: paid, unpaid, shipped and unshipped orders all in it.
    expect(expected.filter((r) => r.paid_at === null).length).toBeGreaterThan(300);
    expect(expected.filter((r) => r.shipped_at === null).length).toBeGreaterThan(300);
    expect(expected.filter((r) => r.paid_at !== null && r.shipped_at !== null).length).toBeGreaterThan(1000);
    const stages = (await loadStages(FILE, { env: {} })).map((s) => s.plan);
    const out: Array<Record<string, unknown>> = [];
    const offsets = new Map<string, number>();
    const route = (plan: Plan, result: ReturnType<Plan['process']>) => {
      expect(result.deadLetters).toEqual([]);
      for (const [sink, rows] of Object.entries(result.sinks)) {
        const s = plan.sinks.find((x) => x.id === sink)!;
        if (s.kind !== 'repartition') {
          out.push(...(rows as Array<Record<string, unknown>>));
          continue;
        }
        const next = stages.find((p) => p.topology.spec.source.topic === s.config.topic)!;
        const written = (rows as RepartitionRow[]).map((r) => {
          const partition = partitionOf(r.key!);
          const at = `${s.config.topic}/${partition}`;
          const offset = offsets.get(at) ?? 0;
          offsets.set(at, offset + 1);
          const value = decodeValue(repartitionMessage(r).value!);
          return { topic: String(s.config.topic), partition, offset, key: r.key, value, timestamp: 0 };
        });
        run(next, written);
      }
    };
    const run = (plan: Plan, list: SourceRecord[]) => {
      const byPartition = new Map<number, SourceRecord[]>();
      for (const r of list) byPartition.set(r.partition, [...(byPartition.get(r.partition) ?? []), r]);
      for (const batch of byPartition.values()) route(plan, plan.process(batch, 0));
    };
    // Each source stage takes its topic in chunks; which stage goes next is random (workers run at their pace).
    const input = records(events);
    const queues = [input.orders, input.payments, input.shipments];
    const rnd = seededRandom(3);
    while (queues.some((q) => q.length > 0)) {
      const i = Math.floor(rnd() * 3);
      const chunk = queues[i]!.splice(0, 50 + Math.floor(rnd() * 150));
      if (chunk.length > 0) run(stages[i]!, chunk);
    }
    for (const plan of stages) route(plan, plan.flush(0));
    expect(sorted(out)).toEqual(sorted(expected as unknown as Array<Record<string, unknown>>));
  });

  it('offline, as one plan fed the three topics, give the same timeline', async () => {
    const events = timelineEvents(1500, { seed: 9, span: 3_600_000 });
    const driver = new TopologyTestDriver(await loadPlan(FILE, { env: {} }));
    const input = records(events);
    const all = [...input.orders, ...input.payments, ...input.shipments].sort((a, b) => a.timestamp - b.timestamp);
    for (let i = 0; i < all.length; i += 100)
      driver.pipe(
        all.slice(i, i + 100).map((r) => ({ topic: r.topic, partition: r.partition, key: r.key, value: r.value })),
      );
    driver.flush();
    expect(driver.deadLetters()).toEqual([]);
    const rows = driver.output('clickhouse:order_timeline') as Array<Record<string, unknown>>;
    expect(sorted(rows)).toEqual(sorted(expectedTimeline(events) as unknown as Array<Record<string, unknown>>));
  });
});

/** A topology reading orders and shipments, with the given steps and sink. */
const twoSources = (steps: string, sink = '    - kafka: { topic: out, value: { format: json } }') =>
  writeTopology(`apiVersion: pipelines/v1
kind: Topology
metadata: { name: j }
spec:
  source:
    topic: orders
    group: j
    value: { schemas: [schemas/OrderPlaced-v2.avsc] }
    eventTime: event.timestamp
  sources:
    shipments:
      topic: shipments
      value: { schemas: [schemas/OrderShipped.avsc] }
      eventTime: event.timestamp
  steps:
${steps}
  sinks:
${sink}
  errors: { deadLetter: dlq }
  topics: { orders: {}, shipments: {}, out: {}, dlq: {} }
`);

const placed = (id: string, t: number) => ({
  eventId: `${id}p`,
  eventType: 'OrderPlaced',
  timestamp: t,
  data: { orderId: id, customerId: 'c', items: [], totalAmount: 1 },
});
const shipped = (id: string, t: number) => ({
  eventId: `${id}s`,
  eventType: 'OrderShipped',
  timestamp: t,
  data: { orderId: id, carrier: 'dhl', trackingNumber: 'z' },
});

const minute = 60_000;
const joinOf = (plans: Plan[]) => plans.find((p) => p.topology.spec.source.topic.endsWith('.repartition'))!;

/** A topology's stages, its join stage, and what a source stage writes to the join's topic as the join reads it. */
async function joinStage(file: string) {
  const stages = (await loadStages(file, { env: {} })).map((x) => x.plan);
  const join = joinOf(stages);
  const offsets = new Map<number, number>();
  const internal = (stage: Plan, values: unknown[], partition = 0): SourceRecord[] => {
    const batch = values.map((value, i) => ({ topic: 't', partition: 0, offset: i, key: null, value, timestamp: 0 }));
    const rows = Object.values(stage.process(batch, 0).sinks).flat() as RepartitionRow[];
    return rows.map((r) => {
      const offset = offsets.get(partition) ?? 0;
      offsets.set(partition, offset + 1);
      const value = decodeValue(repartitionMessage(r).value!);
      return { topic: join.topology.spec.source.topic, partition, offset, key: r.key, value, timestamp: 0 };
    });
  };
  return { stages, join, internal };
}

describe('join', () => {
  it('a batch replayed on a restored join stage emits what it emitted the first time', async () => {
    const file = twoSources(
      '    - id: shipped\n      join: { with: shipments, on: event.data.orderId, within: 1m, type: left, as: s }',
    );
    const { stages, join, internal } = await joinStage(file);
    // Before the cut the two flows are far apart (orders at 120 min, shipments at 10 s); the batch after it moves
    // the shipments to 60 min, which expires order a (0 + 1m) unmatched.
    const before = [
      ...internal(stages[0]!, [placed('a', 0), placed('b', 120 * minute)]),
      ...internal(stages[1]!, [shipped('z', 10_000)]),
    ];
    const after = internal(stages[1]!, [shipped('y', 60 * minute)]);
    const first = join;
    first.trackChanges();
    first.process(before, 0);
    // As the changelog keeps them: copies, not the live objects the first plan goes on changing.
    const state = new Map(structuredClone(first.drainChanges()));
    const clock = first.partitionClock(0);
    const once = first.process(after, 0).sinks;
    expect((Object.values(once).flat() as Array<{ orderId?: string }>).length).toBe(1);

    const second = (await joinStage(file)).join;
    second.loadState([...state].filter(([, v]) => v !== null));
    second.restorePartitionClock(0, clock);
    expect(second.process(after, 0).sinks).toEqual(once);
  });

  it('a partition without a watermark of its own is held by nothing: far ahead, the others do not make it late', async () => {
    const file = twoSources(
      '    - id: shipped\n      join: { with: shipments, on: event.data.orderId, within: 1m, type: left, as: s }',
    );
    const { stages, join, internal } = await joinStage(file);
    // Partition 1 runs two hours ahead (both flows); partition 0 comes later with its backlog, as after a restart
    // whose changelog had no marker for it yet.
    join.process(
      [
        ...internal(stages[0]!, [placed('b', 120 * minute)], 1),
        ...internal(stages[1]!, [shipped('b', 120 * minute)], 1),
      ],
      1,
    );
    const rows = join.process(
      [...internal(stages[0]!, [placed('a', 0)]), ...internal(stages[1]!, [shipped('a', 30_000)])],
      0,
    ).sinks;
    // Met at once (an order left alone would leave only when its window closes, not in this batch).
    const ids = (Object.values(rows).flat() as Array<{ value: { data: { orderId: string } } }>).map(
      (r) => r.value.data.orderId,
    );
    expect(ids).toEqual(['a']);
  });

  const joined = async (type: string) => {
    // Which side may be missing decides what the map can test for null.
    const order = type === 'outer' ? 'event == null ? null : event.data.orderId' : 'event.data.orderId';
    const shipment = type === 'inner' ? 's.data.orderId' : 's == null ? null : s.data.orderId';
    const file = twoSources(
      `    - join: { with: shipments, on: event.data.orderId, within: 1m, type: ${type}, as: s }\n` +
        `    - map: { order: "${order}", shipment: "${shipment}" }`,
    );
    const d = await TopologyTestDriver.load(file, { env: {} });
    d.pipe([{ value: placed('a', 0) }, { source: 'shipments', value: shipped('a', 30_000) }]);
    d.pipe([{ value: placed('b', 10_000) }, { source: 'shipments', value: shipped('c', 20_000) }]);
    // Out of the window of b (more than a minute after it).
    d.pipe([{ source: 'shipments', value: shipped('b', 75_000) }]);
    d.flush();
    const rows = (d.output('kafka:out') as Array<{ value: Record<string, unknown> }>).map((r) => r.value);
    return rows.map((r) => `${r.order}/${r.shipment}`).sort();
  };

  it('inner: pairs within the window only; left: and the orders that met none; outer: and the shipments', async () => {
    expect(await joined('inner')).toEqual(['a/a']);
    expect(await joined('left')).toEqual(['a/a', 'b/null']);
    expect(await joined('outer')).toEqual(['a/a', 'b/null', 'null/b', 'null/c']);
  });

  it('emits an unmatched record once the watermark passes its window, not before; a late record is dead-lettered', async () => {
    const file = twoSources(
      '    - join: { with: shipments, on: event.data.orderId, within: 1m, grace: 10s, type: left }',
    );
    const d = await TopologyTestDriver.load(file, { env: {} });
    d.pipe([{ value: placed('a', 0) }]);
    d.pipe([{ value: placed('x', 69_000) }, { source: 'shipments', value: shipped('y', 69_000) }]);
    expect(d.output('kafka:out')).toEqual([]);
    d.pipe([{ value: placed('x2', 71_000) }, { source: 'shipments', value: shipped('y2', 71_000) }]);
    expect(
      (d.output('kafka:out') as Array<{ value: { event: { data: { orderId: string } } } }>).map(
        (r) => r.value.event.data.orderId,
      ),
    ).toEqual(['a']);
    d.pipe([{ source: 'shipments', value: shipped('a', 500) }]);
    expect(d.deadLetters().map((x) => [x.stepId, x.errorClass])).toEqual([['join-shipments', 'LateEvent']]);
  });

  it('waits for the slower flow: a backlog of one source does not make the other late', async () => {
    const file = twoSources('    - join: { with: shipments, on: event.data.orderId, within: 1m }');
    const stage = (await loadStages(file, { env: {} })).find((s) => s.id.startsWith('join'))!.plan;
    stage.assignPartition(0, 0);
    // Records of the internal topic, as the two source stages wrote them (StagedValue).
    const staged = (offset: number, input: number, event: { timestamp: number; data: { orderId: string } }) => ({
      topic: stage.topics.source,
      partition: 0,
      offset,
      key: event.data.orderId,
      value: { time: event.timestamp, vars: { event }, input },
      timestamp: 0,
    });
    const backlog = stage.process(
      Array.from({ length: 50 }, (_, i) => staged(i, 0, placed(`o${i}`, i * 60_000))),
      0,
    );
    // The orders' flow is 49 minutes on; the shipments' has said nothing yet: the watermark waits.
    expect(backlog.watermark).toBe(Number.NEGATIVE_INFINITY);
    const r = stage.process([staged(50, 1, shipped('o0', 1_000))], 0);
    expect(r.deadLetters).toEqual([]);
    expect(r.sinks['kafka:out']).toHaveLength(1);
    expect(r.watermark).toBe(1_000);
  });

  it('keeps what waits as its state, read back into a new plan', async () => {
    const file = twoSources('    - id: j\n      join: { with: shipments, on: event.data.orderId, within: 1m }');
    const a = await loadPlan(file, { env: {} });
    a.trackChanges();
    const rec = (topic: string, offset: number, value: unknown): SourceRecord => ({
      topic,
      partition: 0,
      offset,
      key: null,
      value,
      timestamp: 0,
    });
    a.process([rec('orders', 0, placed('k', 1000))], 0);
    const changes = a.drainChanges();
    expect(changes.map(([k]) => k)).toEqual(['j|k']);
    const b = await loadPlan(file, { env: {} });
    b.loadState(JSON.parse(JSON.stringify(changes)));
    // The order read again (replayed before its state marker) still waits once: one pair, not two.
    b.process([rec('orders', 0, placed('k', 1000))], 0);
    const r = b.process([rec('shipments', 0, shipped('k', 2000))], 0);
    expect(r.sinks['kafka:out']).toHaveLength(1);
    // What waits on a partition given away is forgotten (its next owner reads it back); another's stays.
    b.process([{ ...rec('orders', 0, placed('q', 1500)), partition: 1 }], 0);
    b.releasePartition(0);
    expect(b.entries().j!.map((e) => e.key)).toEqual(['q']);
  });

  it('is checked: the other flow exists, the keys can meet, and co-partitioning is its own', () => {
    const unknown = checkFile(twoSources('    - join: { with: shipmnts, on: event.data.orderId, within: 1m }'), {
      env: {},
    });
    expect(unknown.diagnostics.find((d) => d.code === 'ref-unknown-source')).toMatchObject({
      severity: 'error',
      hint: expect.stringContaining('shipments'),
    });
    const mixed = checkFile(
      twoSources('    - join: { with: shipments, on: [event.data.totalAmount, event.data.orderId], within: 1m }'),
      { env: {} },
    );
    expect(mixed.diagnostics.find((d) => d.code === 'join-key-invalid')).toMatchObject({
      severity: 'error',
      message: expect.stringContaining('number here, string'),
    });
    const record = checkFile(twoSources('    - join: { with: shipments, on: event.data, within: 1m }'), { env: {} });
    expect(record.diagnostics.find((d) => d.code === 'join-key-invalid')?.severity).toBe('error');
    // A ClickHouse sink in a stage that writes the join's topic in transactions cannot join them.
    const eos = checkFile(
      twoSources(
        '    - join: { with: shipments, on: event.data.orderId, within: 1m }',
        '    - clickhouse: { from: shipments, table: raw, columns: { id: String }, engine: { type: MergeTree, orderBy: [id] } }',
      ),
      { env: {} },
    );
    expect(eos.diagnostics.find((d) => d.code === 'repartition-exactly-once')?.severity).toBe('error');
  });
});

describe('merge', () => {
  it('makes one flow of several, with the variables they share, keyed anew', async () => {
    const file = twoSources(
      '    - merge: { with: [shipments], key: event.data.orderId }\n' +
        '    - map: { id: event.data.orderId, type: event.eventType, k: key }',
    );
    const { diagnostics } = checkFile(file, { env: {} });
    expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const d = await TopologyTestDriver.load(file, { env: {} });
    d.pipe([{ value: placed('a', 0) }, { source: 'shipments', value: shipped('b', 1) }]);
    expect((d.output('kafka:out') as Array<{ value: unknown }>).map((r) => r.value)).toEqual([
      { id: 'a', type: 'OrderPlaced', k: 'a' },
      { id: 'b', type: 'OrderShipped', k: 'b' },
    ]);
    const stages = await loadStages(file, { env: {} });
    expect(stages.map((s) => s.id.replace(/-[0-9a-f]{6}$/, ''))).toEqual(['source', 'shipments', 'merge']);
    expect(stages[2]!.plan.topology.spec.source.topic).toBe(`j.${stages[2]!.id}.repartition`);
    expect(stages[2]!.plan.steps.map((s) => s.kind)).toEqual(['merge', 'map']);
  });
});
