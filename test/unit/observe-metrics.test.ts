// The metrics catalogue and what the worker's events make of it, the /metrics /healthz /readyz server, and the
// status summary read back from it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { DEFAULT_OBSERVE_PORT, observeAddressFromEnv, startObserveServer } from '../../pipelines/observe/http.ts';
import { CATALOGUE, createMetrics, METRICS } from '../../pipelines/observe/metrics.ts';
import { parseExposition, readStatus, renderStatus, statusLine } from '../../pipelines/observe/status.ts';

const ALLOWED_LABELS = new Set([
  'topology',
  'step',
  'sink',
  'topic',
  'partition',
  'reason',
  'event',
  'state',
  'action',
  'outcome',
]);

describe('catalogue', () => {
  test.each(Object.values(METRICS).map((m) => [m.name, m] as const))('%s follows the naming rules', (_, m) => {
    expect(m.name).toMatch(/^pipelines_[a-z0-9_]+$/);
    if (m.type === 'counter') expect(m.name).toMatch(/_total$/);
    else expect(m.name).toMatch(/_(seconds|bytes|records|rows|partitions|paused|up|ready|caught_up|instances)$/);
    for (const l of m.labels) expect(ALLOWED_LABELS.has(l)).toBe(true);
    expect(m.labels[0]).toBe('topology');
    if (m.type === 'histogram') expect(m.buckets?.length).toBeGreaterThan(5);
    expect(m.help.length).toBeGreaterThan(10);
  });

  test('names are unique', () => {
    expect(new Set(CATALOGUE.map((m) => m.name)).size).toBe(CATALOGUE.length);
  });

  test('every declared metric is exported, and the runtime ones listed are produced by prom-client', async () => {
    const metrics = createMetrics();
    metrics.topology('t');
    const names = new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
    for (const m of CATALOGUE)
      expect({ name: m.name, exported: names.has(m.name) }).toEqual({ name: m.name, exported: true });
  });

  test('grafana/README.md lists the whole catalogue (name, type, labels)', () => {
    const text = readFileSync(join(__dirname, '..', '..', 'grafana', 'README.md'), 'utf8');
    for (const m of CATALOGUE) {
      const row = text.split('\n').find((l) => l.startsWith(`| \`${m.name}\``));
      expect({ name: m.name, row: row !== undefined }).toEqual({ name: m.name, row: true });
      expect(row).toContain(`| ${m.type} |`);
      for (const l of m.labels) expect(row).toContain(l);
    }
  });
});

const T0 = 1_700_000_000_000;
async function scrape(registry: Registry) {
  return parseExposition(await registry.metrics());
}
const value = (samples: ReturnType<typeof parseExposition>, name: string, labels: Record<string, string> = {}) =>
  samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);

describe('events feed the metrics', () => {
  let now = T0;
  const make = () => {
    now = T0;
    const metrics = createMetrics({ runtime: false, now: () => now });
    return { metrics, t: metrics.topology('orders') };
  };

  test('batches: records in and out, batch size, lag in records and seconds', async () => {
    const { metrics, t } = make();
    t.rebalance?.({ kind: 'assign', partitions: [0, 1].map((partition) => ({ topic: 'orders', partition })) });
    t.batch({
      topic: 'orders',
      partition: 0,
      records: 500,
      highWatermark: '1500',
      lastOffset: '999',
      lastTimestamp: T0 - 4000,
      outputs: { order_summary: new Array(480), empty: [] },
    });
    t.batch({ topic: 'orders', partition: 1, records: 10, highWatermark: '10', lastOffset: '9', lastTimestamp: T0 });
    now = T0 + 1000;
    const s = await scrape(metrics.registry);
    expect(value(s, 'pipelines_records_in_total', { partition: '0' })).toBe(500);
    expect(value(s, 'pipelines_records_in_total')).toBe(510);
    expect(value(s, 'pipelines_records_out_total', { sink: 'order_summary', partition: '0' })).toBe(480);
    expect(s.some((x) => x.labels.sink === 'empty')).toBe(false);
    expect(value(s, 'pipelines_consumer_lag_records', { partition: '0' })).toBe(500);
    expect(value(s, 'pipelines_consumer_lag_records', { partition: '1' })).toBe(0);
    expect(value(s, 'pipelines_consumer_lag_seconds', { partition: '0' })).toBe(5);
    expect(value(s, 'pipelines_consumer_lag_seconds', { partition: '1' })).toBe(0);
    expect(value(s, 'pipelines_batch_size_records_count')).toBe(2);
    expect(value(s, 'pipelines_batch_size_records_bucket', { le: '500' })).toBe(2);
    expect(value(s, 'pipelines_batch_size_records_bucket', { le: '10' })).toBe(1);
    expect(value(s, 'pipelines_assigned_partitions')).toBe(2);

    // A stuck partition: the end moves on, nothing is processed; the lag in seconds grows at each scrape.
    t.watermark({ topic: 'orders', partition: 1, highWatermark: '110' });
    now = T0 + 61_000;
    const later = await scrape(metrics.registry);
    expect(value(later, 'pipelines_consumer_lag_records', { partition: '1' })).toBe(100);
    expect(value(later, 'pipelines_consumer_lag_seconds', { partition: '1' })).toBe(61);
  });

  test('revoked partitions drop their lag series', async () => {
    const { metrics, t } = make();
    t.rebalance?.({ kind: 'assign', partitions: [{ topic: 'orders', partition: 3 }] });
    t.batch({ topic: 'orders', partition: 3, records: 1, highWatermark: '9', lastOffset: '0', lastTimestamp: T0 });
    t.rebalance?.({ kind: 'revoke', partitions: [{ topic: 'orders', partition: 3 }] });
    const s = await scrape(metrics.registry);
    expect(s.filter((x) => x.name.startsWith('pipelines_consumer_lag'))).toEqual([]);
    expect(value(s, 'pipelines_rebalances_total', { reason: 'revoke' })).toBe(1);
    expect(value(s, 'pipelines_assigned_partitions')).toBe(0);
    expect(value(s, 'pipelines_records_in_total')).toBe(1); // counters stay
  });

  test('steps, dead letters, late events, retries, commits, flushes', async () => {
    const { metrics, t } = make();
    t.stepped({ step: 'filter', ms: 2, recordsIn: 100, recordsOut: 90 });
    t.stepped({ step: 'filter', ms: 0.2, recordsIn: 100, recordsOut: 95 });
    t.deadLetter?.({ step: 'decode', errorClass: 'DecodeError' });
    t.late({ step: 'revenue', records: 3 });
    t.retry?.({ what: 'sink order_summary', attempt: 1, error: new Error('timeout') });
    t.retry?.({ what: 'commit', attempt: 1, error: new Error('coordinator moved') });
    t.committed?.({ partitions: 2, ms: 12 });
    t.flushed?.({ sink: 'revenue', ms: 40 });
    t.paused?.(true);
    const s = await scrape(metrics.registry);
    expect(value(s, 'pipelines_step_records_in_total', { step: 'filter' })).toBe(200);
    expect(value(s, 'pipelines_step_records_out_total', { step: 'filter' })).toBe(185);
    expect(value(s, 'pipelines_step_duration_seconds_sum', { step: 'filter' })).toBeCloseTo(0.0022);
    expect(value(s, 'pipelines_step_duration_seconds_bucket', { step: 'filter', le: '0.00025' })).toBe(1);
    expect(value(s, 'pipelines_dead_letters_total', { step: 'decode', reason: 'DecodeError' })).toBe(1);
    expect(value(s, 'pipelines_late_events_total', { step: 'revenue' })).toBe(3);
    expect(value(s, 'pipelines_retries_total', { reason: 'sink', sink: 'order_summary' })).toBe(1);
    expect(value(s, 'pipelines_retries_total', { reason: 'commit' })).toBe(1);
    expect(value(s, 'pipelines_commits_total')).toBe(1);
    expect(value(s, 'pipelines_commit_duration_seconds_sum')).toBeCloseTo(0.012);
    expect(value(s, 'pipelines_sink_flush_duration_seconds_count', { sink: 'revenue' })).toBe(1);
    expect(value(s, 'pipelines_sink_up', { sink: 'order_summary' })).toBe(0);
    expect(value(s, 'pipelines_sink_up', { sink: 'revenue' })).toBe(1);
    expect(value(s, 'pipelines_consumer_paused')).toBe(1);
  });

  test('end-to-end latency: one observation per record, from its Kafka timestamp to the ack', async () => {
    const { metrics, t } = make();
    t.rebalance?.({ kind: 'assign', partitions: [{ topic: 'orders', partition: 0 }] });
    const batch = (last: number, times: number[], outputs: Record<string, unknown[]>) =>
      t.batch({
        topic: 'orders',
        partition: 0,
        records: times.length,
        highWatermark: String(last + 1),
        lastOffset: String(last),
        lastTimestamp: times[times.length - 1]!,
        outputs,
        timestamps: new Float64Array(times),
      });
    batch(1, [T0 - 50, T0 - 700], { order_summary: [{}] });
    batch(2, [T0 - 7000], { order_summary: [{}], other: [] });
    // Nothing until the sink acknowledges; an ack that covers the first batch only observes its records.
    t.acknowledged({ sink: 'order_summary', topic: 'orders', partition: 0, next: '2' });
    let s = await scrape(metrics.registry);
    const l = { sink: 'order_summary' };
    expect(value(s, 'pipelines_end_to_end_latency_seconds_count', l)).toBe(2);
    t.acknowledged({ sink: 'order_summary', topic: 'orders', partition: 0, next: '3' });
    t.acknowledged({ sink: 'order_summary', topic: 'orders', partition: 0, next: '3' }); // repeated: nothing more
    s = await scrape(metrics.registry);
    expect(value(s, 'pipelines_end_to_end_latency_seconds_count', l)).toBe(3);
    expect(value(s, 'pipelines_end_to_end_latency_seconds_sum', l)).toBeCloseTo(7.75);
    expect(value(s, 'pipelines_end_to_end_latency_seconds_bucket', { ...l, le: '0.05' })).toBe(1);
    expect(value(s, 'pipelines_end_to_end_latency_seconds_bucket', { ...l, le: '1' })).toBe(2);
    expect(value(s, 'pipelines_end_to_end_latency_seconds_bucket', { ...l, le: '10' })).toBe(3);
    expect(value(s, 'pipelines_end_to_end_latency_seconds_bucket', { ...l, le: '+Inf' })).toBe(3);
  });

  test('an acknowledgement that comes before its batch is reported (transactions) observes it at once', async () => {
    const { metrics, t } = make();
    t.rebalance?.({ kind: 'assign', partitions: [{ topic: 'orders', partition: 0 }] });
    t.acknowledged({ sink: 'out', topic: 'orders', partition: 0, next: '5' });
    t.batch({
      topic: 'orders',
      partition: 0,
      records: 2,
      highWatermark: '5',
      lastOffset: '4',
      lastTimestamp: T0 - 100,
      outputs: { out: [{}] },
      timestamps: [T0 - 200, T0 - 100],
    });
    const s = await scrape(metrics.registry);
    expect(value(s, 'pipelines_end_to_end_latency_seconds_count', { sink: 'out' })).toBe(2);
    expect(value(s, 'pipelines_end_to_end_latency_seconds_sum', { sink: 'out' })).toBeCloseTo(0.3);
  });

  test('late events are the dead letters of class LateEvent; watermarks of partitions not held are ignored', async () => {
    const { metrics, t } = make();
    t.deadLetter?.({ step: 'revenue', errorClass: 'LateEvent' });
    t.deadLetter?.({ step: 'decode', errorClass: 'DecodeError' });
    t.watermark({ topic: 'orders', partition: 7, highWatermark: '1000' });
    const s = await scrape(metrics.registry);
    expect(value(s, 'pipelines_late_events_total', { step: 'revenue' })).toBe(1);
    expect(s.some((x) => x.name === 'pipelines_late_events_total' && x.labels.step === 'decode')).toBe(false);
    expect(s.some((x) => x.name === 'pipelines_consumer_lag_records')).toBe(false);
  });

  test('ClickHouse inserts: rows, latency, errors by code, rows in flight', async () => {
    const { metrics, t } = make();
    t.insertStarted({ sink: 'rev', rows: 1000 });
    t.insertStarted({ sink: 'rev', rows: 500 });
    let s = await scrape(metrics.registry);
    expect(value(s, 'pipelines_clickhouse_in_flight_rows', { sink: 'rev' })).toBe(1500);
    t.inserted({ sink: 'rev', rows: 1000, ms: 30 });
    t.insertFailed({ sink: 'rev', rows: 500, ms: 5000, code: 'CH_TIMEOUT' });
    s = await scrape(metrics.registry);
    expect(value(s, 'pipelines_clickhouse_in_flight_rows', { sink: 'rev' })).toBe(0);
    expect(value(s, 'pipelines_clickhouse_rows_total', { sink: 'rev' })).toBe(1000);
    expect(value(s, 'pipelines_clickhouse_insert_duration_seconds_count', { sink: 'rev' })).toBe(2);
    expect(value(s, 'pipelines_clickhouse_insert_errors_total', { sink: 'rev', reason: 'CH_TIMEOUT' })).toBe(1);
    expect(value(s, 'pipelines_sink_up', { sink: 'rev' })).toBe(0);
  });

  test('readiness: partitions, tables caught up, sinks reachable', async () => {
    const { metrics, t } = make();
    expect(metrics.readiness().reasons).toEqual(['orders: no partitions assigned']);
    t.rebalance?.({ kind: 'assign', partitions: [{ topic: 'orders', partition: 0 }] });
    t.table({ topic: 'customers', rows: 10, behind: 90, skipped: 0 });
    t.insertFailed({ sink: 'rev', rows: 0, ms: 1, code: 'CH_UNREACHABLE' });
    expect(metrics.readiness()).toEqual({
      ready: false,
      reasons: [
        'orders: table customers catching up (90 records behind)',
        'orders: sink rev unreachable (CH_UNREACHABLE)',
      ],
    });
    let s = await scrape(metrics.registry);
    expect(value(s, 'pipelines_ready')).toBe(0);
    expect(value(s, 'pipelines_table_rows', { topic: 'customers' })).toBe(10);
    expect(value(s, 'pipelines_table_catchup_records', { topic: 'customers' })).toBe(90);
    expect(value(s, 'pipelines_table_caught_up', { topic: 'customers' })).toBe(0);
    t.table({ topic: 'customers', rows: 100, behind: 0, skipped: 2 });
    t.inserted({ sink: 'rev', rows: 1, ms: 1 });
    // Caught up once is caught up: a table that falls a little behind later stays ready.
    t.table({ topic: 'customers', rows: 101, behind: 3, skipped: 3 });
    expect(metrics.readiness()).toEqual({ ready: true, reasons: [] });
    s = await scrape(metrics.registry);
    expect(value(s, 'pipelines_ready')).toBe(1);
    expect(value(s, 'pipelines_table_caught_up', { topic: 'customers' })).toBe(1);
    // The loader's running count of unreadable rows, as a counter.
    expect(value(s, 'pipelines_table_rows_skipped_total', { topic: 'customers' })).toBe(3);
  });

  test('labels stay bounded: a thousand batches on four partitions make four series', async () => {
    const { metrics, t } = make();
    for (let i = 0; i < 1000; i++) {
      t.batch({ topic: 'o', partition: i % 4, records: 1, highWatermark: String(i + 10), lastOffset: String(i) });
    }
    const s = await scrape(metrics.registry);
    expect(s.filter((x) => x.name === 'pipelines_records_in_total')).toHaveLength(4);
  });
});

describe('HTTP server', () => {
  test('/metrics, /healthz, /readyz with its reasons and extra checks, 404', async () => {
    const metrics = createMetrics();
    const t = metrics.topology('orders');
    let sinkReachable = false;
    const server = await startObserveServer({
      metrics,
      port: 0,
      checks: [() => (sinkReachable ? [] : ['clickhouse: ping failed'])],
    });
    try {
      const metricsRes = await fetch(`${server.url}/metrics`);
      expect(metricsRes.status).toBe(200);
      expect(metricsRes.headers.get('content-type')).toContain('text/plain');
      const text = await metricsRes.text();
      expect(text).toContain('pipelines_assigned_partitions{topology="orders"} 0');
      expect(text).toContain('pipelines_nodejs_eventloop_lag_p99_seconds');

      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      let ready = await fetch(`${server.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({
        ready: false,
        reasons: ['orders: no partitions assigned', 'clickhouse: ping failed'],
      });
      t.rebalance?.({ kind: 'assign', partitions: [{ topic: 'orders', partition: 0 }] });
      sinkReachable = true;
      ready = await fetch(`${server.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ ready: true, reasons: [] });
      expect((await fetch(`${server.url}/nope`)).status).toBe(404);
      expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(405);
    } finally {
      await server.close();
    }
  });

  test('a taken port is a clear error', async () => {
    const a = await startObserveServer({ metrics: createMetrics({ runtime: false }), port: 0 });
    try {
      await expect(startObserveServer({ metrics: createMetrics({ runtime: false }), port: a.port })).rejects.toThrow(
        /is taken: set PIPELINES_METRICS_ADDRESS/,
      );
    } finally {
      await a.close();
    }
  });

  test.each([
    [undefined, { host: '127.0.0.1', port: DEFAULT_OBSERVE_PORT }],
    ['0.0.0.0:9464', { host: '0.0.0.0', port: 9464 }],
    [':9100', { host: '127.0.0.1', port: 9100 }],
    ['9101', { host: '127.0.0.1', port: 9101 }],
    ['[::1]:9102', { host: '::1', port: 9102 }],
  ])('address from env %s', (raw, expected) => {
    expect(observeAddressFromEnv(raw === undefined ? {} : { PIPELINES_METRICS_ADDRESS: raw })).toEqual(expected);
  });

  test('a bad address is refused', () => {
    expect(() => observeAddressFromEnv({ PIPELINES_METRICS_ADDRESS: 'localhost:99999' })).toThrow(/host:port/);
  });
});

describe('status', () => {
  test('reads a worker twice and shows throughput, lag and health', async () => {
    const metrics = createMetrics();
    const t = metrics.topology('orders');
    t.rebalance?.({ kind: 'assign', partitions: [{ topic: 'orders', partition: 0 }] });
    const server = await startObserveServer({ metrics, port: 0 });
    const timer = setInterval(() => {
      t.batch({
        topic: 'orders',
        partition: 0,
        records: 1000,
        highWatermark: '100000000',
        lastOffset: '1000',
        lastTimestamp: Date.now() - 2500,
        outputs: Object.fromEntries([['s', new Array(500)]]),
      });
      t.deadLetter?.({ step: 'decode', errorClass: 'DecodeError' });
    }, 20);
    try {
      const s = await readStatus({ url: server.url, intervalMs: 500 });
      expect(s.ready).toBe(true);
      const o = s.topologies[0]!;
      expect(o.topology).toBe('orders');
      expect(o.inPerSecond).toBeGreaterThan(10_000);
      expect(o.outPerSecond).toBeCloseTo(o.inPerSecond! / 2, -3);
      expect(o.lagRecords).toBeGreaterThan(1e7);
      expect(o.lagSeconds).toBeGreaterThan(2);
      expect(o.deadLetters).toBeGreaterThan(5);
      const screen = renderStatus(s);
      expect(screen).toMatch(/^worker http:\/\/127\.0\.0\.1:\d+: ready\n/);
      expect(screen).toMatch(/\norders +\d+(\.\d)?k +\d+(\.\d)?k +\d+\.\d+M +2\.\ds +1 +\d+ +0 +ready\n/);
      expect(screen).toMatch(/runtime: cpu \d+%, heap \d+ MiB, event loop p99/);
      expect(statusLine(s)).toMatch(/^ready \| orders \d+(\.\d)?k\/s lag \d+\.\d+M \(2\.\ds\) dead \d+$/);
    } finally {
      clearInterval(timer);
      await server.close();
    }
  });

  test('not ready: the reasons are listed', async () => {
    const metrics = createMetrics({ runtime: false });
    metrics.topology('orders');
    const server = await startObserveServer({ metrics, port: 0 });
    try {
      const s = await readStatus({ url: server.url, intervalMs: 0 });
      expect(renderStatus(s)).toContain('NOT READY\n');
      expect(renderStatus(s)).toContain('  - orders: no partitions assigned\n');
    } finally {
      await server.close();
    }
  });

  test('no worker: a user-facing error', async () => {
    await expect(readStatus({ url: 'http://127.0.0.1:1', intervalMs: 0 })).rejects.toMatchObject({
      userFacing: true,
      message: expect.stringMatching(/^no worker answers at http:\/\/127\.0\.0\.1:1/),
    });
  });

  test('parses the text format: labels with escapes, +Inf, comments', () => {
    expect(parseExposition('# HELP x y\nx_bucket{le="+Inf",a="q\\"z"} 3\nup 1 1700000000\n')).toEqual([
      { name: 'x_bucket', labels: { le: '+Inf', a: 'q"z' }, value: 3 },
      { name: 'up', labels: {}, value: 1 },
    ]);
  });
});
