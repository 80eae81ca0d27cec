// `pipelines loadgen` as a user runs it, on the real stack: the order stream and snapshots to Kafka, with skewed
// customers, duplicates, late and swapped events, OrderPlaced v1 and v2 interleaved and poison records among them,
// its expected read models to a file; then the example topologies into embedded ClickHouse, and every read model,
// read with the documented queries, equals the file (computed from the events as written by the load generator's
// own code), and every poison record is in the dead-letter topic, once, failed as its kind should.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { subjectName } from '../../pipelines/codec/index.ts';
import type { DisorderCounts } from '../../pipelines/loadgen/disorder.ts';
import { type ExpectedReadModels, expectedReadModels } from '../../pipelines/loadgen/expected.ts';
import { customerSnapshots, readSchema } from '../../pipelines/loadgen/orders.ts';
import { POISON_KINDS, type PoisonKind, poisonRecords } from '../../pipelines/loadgen/poison.ts';
import { orderEventEncoder } from '../../pipelines/loadgen/produce.ts';
import { loadStream } from '../../pipelines/loadgen/stream.ts';
import { openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import { countBy, readTopic, spawnWorker, stack, stopWorkers, testTopics } from './harness.ts';
import { QUERIES, rowsAsExpected } from './read-models.ts';

jest.setTimeout(300_000);
afterEach(stopWorkers);

/** How the worker's decoder fails each unreadable kind: the dead letter's errorClass. */
const DECODE_ERROR: Record<PoisonKind, string> = {
  'not-avro': 'UNKNOWN_MAGIC_BYTE',
  'unknown-schema-id': 'UNKNOWN_SCHEMA_ID',
  'truncated-avro': 'UNDECODABLE',
  'empty-value': 'TRUNCATED_MESSAGE', // the client hands a zero-length value over as such, not as a tombstone
  // A valid order, but read lossily its key could become another's (keyed state, output partitions).
  'key-not-utf8': 'KEY_NOT_UTF8',
};

test('loadgen writes a seeded, disordered stream with poison whose read models match its expected file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loadgen-'));
  try {
    const topics = testTopics('loadgen');
    // v1 of OrderPlaced first, under BACKWARD: the generator's v2 must pass the registry's own check.
    const { codec, registry } = stack();
    const placed = subjectName('TopicRecordName', {
      topic: topics.ORDERS_TOPIC,
      recordName: 'com.orders.events.OrderPlaced',
    });
    await codec.encoder(placed, readSchema('OrderPlaced'));
    await registry.setSubjectCompatibility(placed, 'BACKWARD');
    const file = join(dir, 'expected.json');
    const disorder = ['--duplicates', '0.01', '--late', '0.01', '--out-of-order', '0.02', '--v2', '0.3'];
    const gen = spawnSync(
      process.execPath,
      [
        'pipelines/cli/main.ts',
        'loadgen',
        ...['--orders', '4000', '--seed', '9', '--skew', '1.1', ...disorder, '--poison', '10', '--expected', file],
      ],
      { encoding: 'utf8', env: { ...process.env, ...topics } },
    );
    expect({ code: gen.status, err: gen.stderr }).toEqual({ code: 0, err: '' });
    expect(gen.stdout).toMatch(
      /\d+ events \(4000 orders, seed 9\) .*; \d+ duplicates, \d+ late, \d+ swapped out of order, \d+ OrderPlaced v2, 10 poison records\n/,
    );
    const expected = JSON.parse(readFileSync(file, 'utf8')) as {
      events: number;
      poison: number;
      disorder: DisorderCounts;
      readModels: ExpectedReadModels;
    };
    expect(expected.events).toBeGreaterThan(10_000);
    expect(expected.poison).toBe(10);
    // Each kind happened (the unit tests check the shares); late ones only where the stream ran on long enough.
    for (const kind of ['duplicate', 'late', 'outOfOrder', 'v2'] as const)
      expect({ kind, some: expected.disorder[kind] > 0 }).toEqual({ kind, some: true });
    expect(await registry.getVersions(placed)).toEqual([1, 2]);
    // The file is the fold of the events as written (the same seeded stream, made again here).
    const shares = { duplicate: 0.01, late: 0.01, outOfOrder: 0.02, v2: 0.3 };
    const events = [...loadStream({ orders: 4000, seed: 9, skew: 1.1, shares })];
    expect(expectedReadModels(events, customerSnapshots())).toEqual(expected.readModels);

    const models = expected.readModels;
    const poison = poisonRecords(10, { seed: 9, encodeValid: await orderEventEncoder(codec, topics.ORDERS_TOPIC) });

    const env = { ...topics, PIPELINES_CLICKHOUSE_PATH: join(dir, 'ch') };
    for (const topology of ['topologies/order-analytics.yaml', 'topologies/order-status.yaml']) {
      const w = spawnWorker(topology, env, ['--until-caught-up'], 'loadgen');
      expect(await w.exited).toBe(0);
    }
    const ch = openClickHouse({ kind: 'embedded', path: join(dir, 'ch') });
    try {
      const read = (query: string) => rowsAsExpected(ch, query);
      for (const model of ['revenue_by_segment_1m', 'revenue_by_product_1m', 'customer_ltv'] as const) {
        expect({ model, rows: await read(QUERIES[model]) }).toEqual({ model, rows: models[model] });
      }
      const funnel = (await read(QUERIES.order_funnel)).map(({ hour, placed, paid, shipped, cancelled }) => ({
        hour,
        placed,
        paid,
        shipped,
        cancelled,
      }));
      expect(funnel).toEqual(models.order_funnel);
      const status = await read('SELECT status, count() AS n FROM order_summary FINAL GROUP BY status ORDER BY status');
      expect(Object.fromEntries(status.map((r) => [r.status, r.n]))).toEqual(models.order_status);
    } finally {
      await ch.close();
    }

    // Both topologies dead-letter to DLQ_TOPIC, the poison records and nothing else (no event was too late for a
    // window): order-analytics' share holds each of them once, failed as its kind should.
    const dead = await readTopic(topics.DLQ_TOPIC, { decode: 'raw', idleMs: 5000 });
    const unreadable = poison;
    expect(POISON_KINDS.filter((k) => !poison.some((p) => p.kind === k))).toEqual([]);
    expect(Object.fromEntries(countBy(dead, (d) => d.headers['pipelines.dlq.topology'] ?? '?'))).toEqual({
      'order-analytics': unreadable.length,
      'order-status': unreadable.length,
    });
    const analytics = dead.filter((d) => d.headers['pipelines.dlq.topology'] === 'order-analytics');
    const failed = new Map(analytics.map((d) => [d.key, `${d.headers['pipelines.dlq.errorClass']}`]));
    expect(Object.fromEntries(countBy(analytics, (d) => d.key ?? 'null'))).toEqual(
      Object.fromEntries(unreadable.map((p) => [p.key.toString(), 1])),
    );
    expect(unreadable.map((p) => [p.kind, failed.get(p.key.toString())])).toEqual(
      unreadable.map((p) => [p.kind, DECODE_ERROR[p.kind]]),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
