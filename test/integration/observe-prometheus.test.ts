// Every dashboard query and every alert rule, run through the real Prometheus of the local stack after it has
// scraped a worker's /metrics (on one of the ports it scrapes, 19100-19103) while a workload ran: each panel
// query must return data for the topology under test, each variable must list it, and each alert must fire for
// the topology that has its problem and for no healthy one. The rules file also passes `promtool check rules`.
//
// The workload is synthetic (test/integration/observe-workload.ts) and feeds the same events a worker emits;
// to run a real worker instead, start it in startLoad with `events: metrics.topology(names.healthy)`.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import {
  loadDashboards,
  loadRules,
  panelQueries,
  promVariables,
  substituteVariables,
  TEST_INTERVALS,
} from '../../pipelines/observe/dashboard-queries.ts';
import { type ObserveServer, startObserveServer } from '../../pipelines/observe/http.ts';
import { createMetrics, type Metrics } from '../../pipelines/observe/metrics.ts';
import { startSyntheticWorkload, type Workload } from './observe-workload.ts';

jest.setTimeout(120_000);

const root = join(__dirname, '..', '..');
const prometheus = process.env.PIPELINES_PROMETHEUS_URL ?? 'http://127.0.0.1:19090';
const PORTS = (process.env.WORKER_METRICS_PORTS ?? '19100 19101 19102 19103').split(/\s+/).map(Number);
/** Scrapes to wait for after the target is up (every 5 s): enough for rate() over $__rate_interval. */
const SCRAPES = 3;

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

async function startLoad(metrics: Metrics): Promise<Workload> {
  return startSyntheticWorkload(metrics, `obs${process.pid}`);
}

let metrics: Metrics;
let server: ObserveServer;
let load: Workload;
let instance: string;

beforeAll(async () => {
  const up = await fetch(`${prometheus}/-/ready`).catch(() => undefined);
  if (!up?.ok) throw new Error(`no Prometheus at ${prometheus}: start the local stack (deploy/local/stack up)`);
  // Rules files added since Prometheus started are read on reload.
  await fetch(`${prometheus}/-/reload`, { method: 'POST' });

  metrics = createMetrics();
  for (const port of PORTS) {
    try {
      server = await startObserveServer({ metrics, port });
      break;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EADDRINUSE') throw err;
    }
  }
  if (!server) throw new Error(`every port Prometheus scrapes is taken: ${PORTS.join(', ')}`);
  instance = `127.0.0.1:${server.port}`;
  load = await startLoad(metrics);

  // Wait until Prometheus scrapes us, then for SCRAPES more scrapes (every 5 s) while the load runs.
  const started = Date.now();
  for (;;) {
    const targets = (await (await fetch(`${prometheus}/api/v1/targets?state=active`)).json()) as {
      data: { activeTargets: Array<{ scrapeUrl: string; health: string; lastScrape: string }> };
    };
    const t = targets.data.activeTargets.find((x) => x.scrapeUrl === `${server.url}/metrics`);
    if (!t) throw new Error(`Prometheus does not scrape ${server.url}: is it the local stack's?`);
    if (t.health === 'up' && Date.parse(t.lastScrape) > started) break;
    if (Date.now() - started > 30_000) throw new Error(`Prometheus did not scrape ${server.url} (health ${t.health})`);
    await new Promise((r) => setTimeout(r, 500));
  }
  await new Promise((r) => setTimeout(r, SCRAPES * 5000 + 1000));
});

afterAll(async () => {
  await load?.stop();
  await server?.close();
});

const dashboards = loadDashboards(join(root, 'grafana', 'dashboards'));

describe.each(dashboards.map((d) => [d.file, d.dashboard] as const))('%s', (file, d) => {
  test('every variable lists the topology and the worker under test', async () => {
    const values: Record<string, string> = { topology: load.healthy };
    for (const v of promVariables(d)) {
      const listed = await labelValues(substituteVariables(v.selector, values), v.label);
      const expected = v.label === 'topology' ? load.healthy : instance;
      expect({ variable: v.name, listed: listed.includes(expected) }).toEqual({ variable: v.name, listed: true });
    }
  });

  const queries = panelQueries(file, d).filter((q) => q.kind === 'prometheus');
  test.each(queries.map((q) => [q.where, q.query] as const))('%s returns data', async (_, expr) => {
    const vars: Record<string, string> = { ...TEST_INTERVALS, topology: load.healthy };
    for (const v of promVariables(d)) if (v.name === 'instance') vars.instance = instance;
    const result = await promQuery(substituteVariables(expr, vars));
    expect(result.length).toBeGreaterThan(0);
    // Series that name a topology must include the one under test, with a number (not NaN: no observations).
    const ours = result.filter((r) => (r.metric.topology ?? load.healthy) === load.healthy);
    expect(ours.length).toBeGreaterThan(0);
    expect(ours.some((r) => Number.isFinite(Number(r.value[1])))).toBe(true);
  });
});

describe('alert rules', () => {
  const rules = loadRules(join(root, 'grafana', 'alerts'));
  const expected: Record<string, keyof Pick<Workload, 'noisy' | 'stuck'>> = {
    PipelinesLagGrowing: 'stuck',
    PipelinesDeadLetterRate: 'noisy',
    PipelinesNoProgress: 'stuck',
    PipelinesNotReady: 'stuck',
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

  test.each(rules.map((r) => [r.name, r.query] as const))(
    '%s fires for the faulty topology only',
    async (name, expr) => {
      const fired = new Set((await promQuery(expr)).map((r) => r.metric.topology));
      expect(expected[name]).toBeDefined();
      expect({ name, fires: fired.has(load[expected[name]!]) }).toEqual({ name, fires: true });
      expect({ name, healthy: fired.has(load.healthy) }).toEqual({ name, healthy: false });
    },
  );
});
