// Every dashboard query and every alert rule, run through the real Prometheus of the local stack after it has
// scraped REAL workers (`pipelines run`, child processes, on the ports it scrapes, 19100-19104) under load:
//   healthy  test/integration/observe-orders.yaml: Avro in, two lookup tables, a module, a window that
//            dead-letters late lines, Kafka out and ClickHouse out (embedded); live orders, a few poison
//            records and a few late ones (old event times);
//   noisy    the same topology on its own topics with 3% poison records (PipelinesDeadLetterRate);
//   stuck    a consumer that has stopped, on a real topic whose end keeps moving: the metrics of a worker
//            that holds the partition and consumes nothing, with the worker's real watermark poller reading
//            the topic's end and the group's position (PipelinesLagGrowing, PipelinesNoProgress). Simulated
//            because no real worker can be stalled on this stack for long enough: a one-broker Kafka 4
//            caps min.insync.replicas at the replication factor, the embedded ClickHouse cannot be stopped,
//            and NoProgress needs a worker that consumed nothing at all within the 5 minute window;
//   chfault  the ClickHouse sink's writer (SinkWriter, with the worker's instrumentation and retry reporting)
//            on the Debian ClickHouse server, which is stopped for real (insert errors, sink retries, a sink
//            down: PipelinesNotReady). A whole worker cannot do this: the topologies' tables need a current
//            ClickHouse (DateTime64, insert tokens) and the only server here is 18.16; the embedded engine
//            cannot be stopped from outside.
// stuck and chfault share the test process's /metrics. Each panel query must return data for the source that has
// it (healthy for all but the retry and insert error panels, which read chfault); each alert must fire for its
// faulty source and for no other.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { topicPositions } from '../../pipelines/kafka/offsets.ts';
import { applyTopics } from '../../pipelines/kafka/topics.ts';
import { orderLifecycleStream, orderPlacedStream } from '../../pipelines/loadgen/orders.ts';
import { openProducer, orderEventEncoder, produce } from '../../pipelines/loadgen/produce.ts';
import {
  loadDashboards,
  loadRules,
  panelQueries,
  promVariables,
  substituteVariables,
  TEST_INTERVALS,
} from '../../pipelines/observe/dashboard-queries.ts';
import { type ObserveServer, startObserveServer } from '../../pipelines/observe/http.ts';
import { createMetrics } from '../../pipelines/observe/metrics.ts';
import { watchWatermarks } from '../../pipelines/observe/watermarks.ts';
import { openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import { createTableSql } from '../../pipelines/sinks/clickhouse/ddl.ts';
import { instrumentClickHouse } from '../../pipelines/sinks/clickhouse/instrument.ts';
import { ensureOffsetsTable } from '../../pipelines/sinks/clickhouse/offsets.ts';
import { SinkWriter } from '../../pipelines/sinks/clickhouse/writer.ts';
import {
  createTopics,
  produceSnapshots,
  spawnWorker,
  stack,
  stopWorkers,
  type TestTopics,
  testTopics,
  type WorkerProcess,
} from './harness.ts';

jest.setTimeout(240_000);

const root = resolve(__dirname, '..', '..');
const prometheus = process.env.PIPELINES_PROMETHEUS_URL ?? 'http://127.0.0.1:19090';
const PORTS = (process.env.WORKER_METRICS_PORTS ?? '19100 19101 19102 19103 19104').split(/\s+/).map(Number);
const CLICKHOUSE_URL = process.env.PIPELINES_CLICKHOUSE_SERVER_URL ?? 'http://127.0.0.1:18123';
/** Scrapes (every 5 s) to wait for once every source is up: enough for rate() over $__rate_interval (1m). */
const SCRAPES = 4;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const stackCmd = (...args: string[]) =>
  execFileSync('bash', [join(root, 'deploy/local/stack'), ...args], { stdio: 'pipe', timeout: 150_000 });

interface PromResult {
  metric: Record<string, string>;
  value: [number, string];
}

async function promQuery(query: string): Promise<PromResult[]> {
  const res = await fetch(`${prometheus}/api/v1/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ query }),
  });
  const body = (await res.json()) as { status: string; error?: string; data: { resultType: string; result: unknown } };
  if (body.status !== 'success') throw new Error(`${query}: ${body.error}`);
  if (body.data.resultType !== 'vector') throw new Error(`${query}: ${body.data.resultType} result`);
  return body.data.result as PromResult[];
}

async function labelValues(selector: string, label: string): Promise<string[]> {
  const q = new URLSearchParams({ 'match[]': selector, start: String(Date.now() / 1000 - 60) });
  const body = (await (await fetch(`${prometheus}/api/v1/label/${label}/values?${q}`)).json()) as { data: string[] };
  return body.data;
}

async function freePort(taken: Set<number>): Promise<number> {
  for (const port of PORTS) {
    if (taken.has(port)) continue;
    const busy = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(500) }).then(
      () => true,
      () => false,
    );
    if (!busy) {
      taken.add(port);
      return port;
    }
  }
  throw new Error(`every port Prometheus scrapes is taken: ${PORTS.join(', ')}`);
}

/** Waits until Prometheus has scraped `url` successfully at least once after `since`. */
async function scraped(url: string, since: number, timeoutMs = 90_000): Promise<void> {
  for (;;) {
    const targets = (await (await fetch(`${prometheus}/api/v1/targets?state=active`)).json()) as {
      data: { activeTargets: Array<{ scrapeUrl: string; health: string; lastScrape: string }> };
    };
    const t = targets.data.activeTargets.find((x) => x.scrapeUrl === `${url}/metrics`);
    if (!t) throw new Error(`Prometheus does not scrape ${url}: is it the local stack's?`);
    if (t.health === 'up' && Date.parse(t.lastScrape) > since) return;
    if (Date.now() - since > timeoutMs) throw new Error(`Prometheus did not scrape ${url} (health ${t.health})`);
    await sleep(500);
  }
}

const run = `obs${process.pid % 100000}${Date.now() % 100000}`;
const names = {
  healthy: `${run}-healthy`,
  noisy: `${run}-noisy`,
  stuck: `${run}-stuck`,
  chfault: `${run}-chfault`,
  // The topology's own name: the example saga, with its participants failing and losing replies.
  saga: 'order-fulfilment',
};
type Source = keyof typeof names;
const instances: Partial<Record<Source, string>> = {};
const workers: WorkerProcess[] = [];
const stops: Array<() => Promise<void> | void> = [];
let dir: string;

/**
 * Orders in event-time order starting now, `perTick` every 250 ms, with poison and late records mixed in. One
 * producer for the whole feed: a client opened and closed per tick, in four feeds at once, is native teardown
 * churn in the test process (CI saw it die of SIGSEGV here twice).
 */
function liveOrders(topics: TestTopics, o: { perTick: number; poison: number; late: number; seed: number }) {
  const { conn, codec } = stack();
  let tick = 0;
  let stopped = false;
  const loop = (async () => {
    const encode = await orderEventEncoder(codec, topics.ORDERS_TOPIC);
    const producer = await openProducer(conn.kafka);
    try {
      while (!stopped) {
        tick++;
        const now = Date.now();
        const events = [...orderLifecycleStream(o.perTick, { seed: o.seed * 1000 + tick, startTime: now, stepMs: 1 })];
        const messages = events.map((e) => ({
          key: `${tick}-${e.data.orderId}`,
          value: encode({ ...e, data: { ...e.data, orderId: `${tick}-${e.data.orderId}` } } as never),
        }));
        // Late: placed an hour ago, after the window's watermark has passed (allowed lateness 1 minute).
        for (const e of [...orderLifecycleStream(o.late, { seed: tick, startTime: now - 3_600_000 })].filter(
          (x) => x.eventType === 'OrderPlaced',
        )) {
          messages.push({ key: `late-${tick}-${e.data.orderId}`, value: encode(e) });
        }
        for (let i = 0; i < o.poison; i++) {
          messages.push({ key: `poison-${tick}-${i}`, value: Buffer.from('not avro') });
        }
        await producer.send(topics.ORDERS_TOPIC, messages);
        await sleep(Math.max(0, 250 - (Date.now() - now)));
      }
    } finally {
      await producer.close();
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

async function startWorker(source: Source, file: string, topics: TestTopics, env: Record<string, string> = {}) {
  const port = await freePort(taken);
  instances[source] = `127.0.0.1:${port}`;
  const w = spawnWorker(
    file,
    { ...topics, OBSERVE_TOPOLOGY: names[source], ...env },
    ['--metrics', `127.0.0.1:${port}`, '--group', names[source]],
    `observe-${source}`,
  );
  workers.push(w);
  return w;
}
const taken = new Set<number>();

/**
 * The example saga under load: orders placed every 250 ms into its inbox, participants that refuse 30% and lose
 * 10% of their replies, timeouts of 1 s: sagas complete, compensate, time out, retry and see late replies.
 */
async function startSaga(): Promise<() => Promise<void>> {
  const p = `${run}-saga`;
  const env = {
    FULFILMENT_TOPIC: `${p}.fulfilment`,
    COMMANDS_TOPIC: `${p}.commands`,
    OUTCOMES_TOPIC: `${p}.outcomes`,
    SAGA_STATUS_TOPIC: `${p}.status`,
    SAGA_TIMEOUT: '1s',
    PARTICIPANT_FAILURE_RATE: '0.3',
    PARTICIPANT_LOSS_RATE: '0.1',
    // A compensation whose reply is lost fails the saga at once: failed-to-compensate sagas for the alert.
    COMPENSATION_RETRIES: '0',
  };
  await applyTopics(stack().conn.kafka, [
    ...[env.FULFILMENT_TOPIC, env.COMMANDS_TOPIC, env.OUTCOMES_TOPIC, env.SAGA_STATUS_TOPIC].map((name) => ({
      name,
      partitions: 3,
      replicas: 1,
    })),
    { name: `${p}.dlq`, partitions: 1, replicas: 1 },
  ]);
  const participants = spawnWorker(
    join(root, 'topologies/order-participants.yaml'),
    { ...env, DLQ_TOPIC: `${p}.dlq` },
    [],
    'observe-participants',
  );
  workers.push(participants);
  await startWorker('saga', join(root, 'topologies/order-fulfilment.yaml'), {} as TestTopics, {
    ...env,
    DLQ_TOPIC: `${p}.dlq`,
  });
  const { conn, codec } = stack();
  const encode = await orderEventEncoder(codec, env.FULFILMENT_TOPIC);
  let stopped = false;
  let tick = 0;
  const producer = await openProducer(conn.kafka);
  const loop = (async () => {
    while (!stopped) {
      tick++;
      const orders = [...orderPlacedStream(20, { seed: tick, startTime: Date.now() })];
      await producer.send(
        env.FULFILMENT_TOPIC,
        orders.map((o) => ({
          key: `${tick}-${o.data.orderId}`,
          value: encode({ ...o, data: { ...o.data, orderId: `${tick}-${o.data.orderId}` } } as never),
        })),
      );
      await sleep(250);
    }
  })();
  return async () => {
    stopped = true;
    await loop;
    await producer.close();
  };
}

/**
 * In the test process, on one port: the ClickHouse sink's writer on the Debian server, instrumented as launch
 * does, fed rows every 200 ms; and the stopped consumer of `stuckTopic`.
 */
async function startInProcess(stuckTopic: string): Promise<{ server: ObserveServer }> {
  stackCmd('up', 'clickhouse');
  const metrics = createMetrics();
  const stuck = metrics.topology(names.stuck);
  stuck.rebalance?.({ kind: 'assign', partitions: [{ topic: stuckTopic, partition: 0 }] });
  const positions = topicPositions(stack().conn.kafka, stuckTopic, names.stuck);
  const watch = watchWatermarks({ positions, topic: stuckTopic, start: 'earliest', events: stuck });
  stops.push(() => watch.stop());
  const t = metrics.topology(names.chfault);
  const table = `observe_faults_${process.pid}`;
  const raw = openClickHouse({ kind: 'server', url: CLICKHOUSE_URL, requestTimeoutMs: 2_000 });
  const ch = instrumentClickHouse(raw, t, new Map([[table, 'faults']]));
  await ch.client.command({
    query: createTableSql({
      table,
      columns: [
        { name: 'id', type: 'UInt64' },
        { name: 'amount', type: 'Float64' },
      ],
      engine: { kind: 'MergeTree' },
      orderBy: ['id'],
      dedupWindow: 0, // 18.16 does not know the setting
    }),
  });
  await ensureOffsetsTable(ch);
  const writer = new SinkWriter(ch, {
    topology: names.chfault,
    sink: 'faults',
    tables: [{ table, columns: ['id', 'amount'] }],
    format: 'JSONEachRow',
    tokens: false, // 18.16 has no insert tokens
    maxDelayMs: 200,
    retry: {
      policy: { initialMs: 200, maxMs: 1000 },
      onRetry: (error: Error, attempt: number) => t.retry?.({ what: 'sink faults', attempt, error }),
    },
  });
  const port = await freePort(taken);
  const server = await startObserveServer({ metrics, port });
  instances.chfault = `127.0.0.1:${port}`;
  instances.stuck = instances.chfault;
  t.rebalance?.({ kind: 'assign', partitions: [{ topic: 'faults', partition: 0 }] });
  let offset = 0;
  const timer = setInterval(() => {
    const first = offset;
    const rows = Array.from({ length: 100 }, (_, i) => ({ id: first + i, amount: i }));
    offset += rows.length;
    writer
      .write({ topic: 'faults', partition: 0, first: String(first), last: String(offset - 1) }, { [table]: rows })
      .catch(() => undefined);
  }, 200);
  stops.push(async () => {
    clearInterval(timer);
    await writer.close({ abort: true });
    await server.close();
    await raw.client.command({ query: `DROP TABLE IF EXISTS ${table}` }).catch(() => undefined);
    await raw.close();
  });
  return { server };
}

beforeAll(async () => {
  const up = await fetch(`${prometheus}/-/ready`).catch(() => undefined);
  if (!up?.ok) throw new Error(`no Prometheus at ${prometheus}: start the local stack (deploy/local/stack up)`);
  await fetch(`${prometheus}/-/reload`, { method: 'POST' }); // rules files added since it started

  // The test topology runs from a folder that holds its schemas and module (paths stay inside it).
  dir = mkdtempSync(join(tmpdir(), 'pipelines-observe-'));
  cpSync(join(__dirname, 'observe-orders.yaml'), join(dir, 'observe-orders.yaml'));
  cpSync(join(root, 'topologies/schemas'), join(dir, 'schemas'), { recursive: true });
  cpSync(join(root, 'topologies/modules'), join(dir, 'modules'), { recursive: true });
  const file = join(dir, 'observe-orders.yaml');

  const healthy = testTopics(`${run}-healthy`);
  const noisy = testTopics(`${run}-noisy`);
  const stuck = testTopics(`${run}-stuck`);
  await Promise.all([createTopics(healthy), createTopics(noisy), createTopics(stuck, 1)]);
  await Promise.all([produceSnapshots(healthy), produceSnapshots(noisy)]);
  // A backlog the stopped consumer will never get through.
  const { conn, codec } = stack();
  const encode = await orderEventEncoder(codec, stuck.ORDERS_TOPIC);
  await produce(
    conn.kafka,
    stuck.ORDERS_TOPIC,
    [...orderLifecycleStream(4000, { seed: 5, startTime: Date.now() })].map((e) => ({
      key: e.data.orderId,
      value: encode(e),
    })),
  );

  stops.push(liveOrders(healthy, { perTick: 300, poison: 1, late: 1, seed: 1 }));
  stops.push(liveOrders(noisy, { perTick: 100, poison: 12, late: 0, seed: 2 }));
  stops.push(liveOrders(stuck, { perTick: 100, poison: 0, late: 0, seed: 3 }));
  const chPath = (s: string) => ({ PIPELINES_CLICKHOUSE_PATH: join(dir, `chdb-${s}`) });
  await startWorker('healthy', file, healthy, chPath('healthy'));
  await startWorker('noisy', file, noisy, chPath('noisy'));
  await startInProcess(stuck.ORDERS_TOPIC);
  stops.push(await startSaga());

  // Every source is scraped, then the ClickHouse server goes away for real while the writer keeps writing.
  const started = Date.now();
  for (const s of Object.keys(names) as Source[]) await scraped(`http://${instances[s]}`, started);
  stackCmd('down', 'clickhouse');
  await sleep(SCRAPES * 5000 + 1000);
  for (const w of workers) {
    if (w.child.exitCode !== null) throw new Error(`a worker exited (${w.child.exitCode}): see ${w.log}`);
  }
});

afterAll(async () => {
  for (const w of workers) w.child.kill('SIGTERM');
  // An unreferenced timer: the race must not keep the test process alive once every worker is gone.
  const grace = new Promise((r) => setTimeout(r, 15_000).unref());
  await Promise.all(workers.map((w) => Promise.race([w.exited, grace])));
  await stopWorkers();
  try {
    stackCmd('up', 'clickhouse'); // whatever happened, leave the server running
  } finally {
    for (const s of stops.reverse()) await s();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

const dashboards = loadDashboards(join(root, 'grafana', 'dashboards'));
/** The source whose data a query shows: the fault panels read chfault, everything else the healthy worker. */
const sourceOf = (expr: string): Source =>
  /pipelines_saga_/.test(expr)
    ? 'saga'
    : /pipelines_(retries|clickhouse_insert_errors)_total/.test(expr)
      ? 'chfault'
      : 'healthy';

describe.each(dashboards.map((d) => [d.file, d.dashboard] as const))('%s', (file, d) => {
  test('every variable lists the topology and the worker under test', async () => {
    const source: Source = file === 'pipelines-sagas.json' ? 'saga' : 'healthy';
    for (const v of promVariables(d)) {
      const listed = await labelValues(substituteVariables(v.selector, { topology: names[source] }), v.label);
      const expected = v.label === 'topology' ? names[source] : instances[source]!;
      expect({ variable: v.name, listed: listed.includes(expected) }).toEqual({ variable: v.name, listed: true });
    }
  });

  const queries = panelQueries(file, d).filter((q) => q.kind === 'prometheus');
  test.each(queries.map((q) => [q.where, q.query] as const))('%s returns data', async (_, expr) => {
    const source = sourceOf(expr);
    const vars: Record<string, string> = { ...TEST_INTERVALS, topology: names[source] };
    for (const v of promVariables(d)) if (v.name === 'instance') vars.instance = instances[source]!;
    const result = await promQuery(substituteVariables(expr, vars));
    expect(result.length).toBeGreaterThan(0);
    // Series that name a topology must include the source's, with a number (not NaN: no observations).
    const ours = result.filter((r) => (r.metric.topology ?? names[source]) === names[source]);
    expect({ source, series: ours.length > 0 }).toEqual({ source, series: true });
    expect({ source, finite: ours.some((r) => Number.isFinite(Number(r.value[1]))) }).toEqual({
      source,
      finite: true,
    });
  });
});

test('the healthy worker really moved: records in, rows to Kafka and ClickHouse, late lines, dead letters', async () => {
  const t = `topology="${names.healthy}"`;
  const value = async (q: string) => Number((await promQuery(q))[0]?.value[1] ?? 0);
  expect(await value(`sum(rate(pipelines_records_in_total{${t}}[1m]))`)).toBeGreaterThan(100);
  expect(await value(`count(sum by (sink) (pipelines_records_out_total{${t}}) > 0)`)).toBe(2); // Kafka, ClickHouse
  expect(await value(`sum(pipelines_clickhouse_rows_total{${t}})`)).toBeGreaterThan(0);
  expect(await value(`sum(pipelines_late_events_total{${t}})`)).toBeGreaterThan(0);
  expect(await value(`sum(pipelines_dead_letters_total{${t},reason!="LateEvent"})`)).toBeGreaterThan(0);
  expect(await value(`sum(pipelines_end_to_end_latency_seconds_count{${t}})`)).toBeGreaterThan(0);
  expect(await value(`min(pipelines_ready{${t}})`)).toBe(1);
});

describe('alert rules', () => {
  const rules = loadRules(join(root, 'grafana', 'alerts'));
  const expected: Record<string, Source> = {
    PipelinesLagGrowing: 'stuck',
    PipelinesDeadLetterRate: 'noisy',
    PipelinesNoProgress: 'stuck',
    PipelinesNotReady: 'chfault',
    PipelinesSagaFailedToCompensate: 'saga',
  };

  test('promtool check rules passes', () => {
    const r = spawnSync('promtool', ['check', 'rules', join(root, 'grafana/alerts/pipelines.yml')], {
      encoding: 'utf8',
    });
    expect(r.stdout).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  test('Prometheus has loaded every rule and evaluates it without error', async () => {
    const body = (await (await fetch(`${prometheus}/api/v1/rules`)).json()) as {
      data: { groups: Array<{ file: string; rules: Array<{ name: string; health: string; lastError?: string }> }> };
    };
    const loaded = body.data.groups.filter((g) => g.file.startsWith(join(root, 'grafana', 'alerts')));
    const byName = new Map(loaded.flatMap((g) => g.rules.map((r) => [r.name, r] as const)));
    for (const rule of rules) {
      const r = byName.get(rule.name);
      expect({ rule: rule.name, health: r?.health, error: r?.lastError ?? '' }).toEqual({
        rule: rule.name,
        health: expect.stringMatching(/^(ok|unknown)$/),
        error: '',
      });
    }
  });

  test.each(rules.map((r) => [r.name, r.query] as const))('%s fires for the faulty source only', async (name, expr) => {
    const fired = new Set((await promQuery(expr)).map((r) => r.metric.topology));
    const faulty = expected[name];
    expect(faulty).toBeDefined();
    const ours = Object.entries(names)
      .filter(([, n]) => fired.has(n))
      .map(([s]) => s);
    expect({ name, fired: ours }).toEqual({ name, fired: [faulty] });
  });

  test('the ClickHouse source is not ready because its sink is down, and says so', async () => {
    const r = (await (await fetch(`http://${instances.chfault}/readyz`)).json()) as { reasons: string[] };
    expect(r.reasons.join('\n')).toMatch(/sink faults unreachable \(.*(unavailable|ECONNREFUSED)/);
  });
});
