// The worker image, built for real (podman, from deploy/docker/Dockerfile, on the local base images) and run on
// the local stack over the host network: `validate`, the order generator, order-analytics `--until-caught-up` on
// the embedded engine (read-only root, its data on a volume) with /metrics scraped from outside, and the
// Kafka-only `server` image running order-forward, scraped by the stack's Prometheus and stopped by a signal.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { MIN_MEMORY_LIMIT_MIB, nodeOptionsFor } from '../../pipelines/deploy/render.ts';
import { orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import { scratch, topology } from '../unit/topology/helpers.ts';
import { describeDeploy, env, ok, type Ran, ROOT, run } from './tools.ts';

const FULL = 'localhost/order-pipelines:test';
const SERVER = 'localhost/order-pipelines:test-server';
const ORDERS = Number(process.env.PIPELINES_DEPLOY_ORDERS || 20_000);
const SEED = 7;
const BROKERS = process.env.PIPELINES_BROKERS || '127.0.0.1:19092';
const REGISTRY = process.env.PIPELINES_REGISTRY_URL || 'http://127.0.0.1:18081/apis/ccompat/v7';
const PROMETHEUS = process.env.PIPELINES_PROMETHEUS_URL || 'http://127.0.0.1:19090';
// Ports the stack's Prometheus scrapes (deploy/local/stack); the in-container workers listen on two of them.
const PORTS = (process.env.WORKER_METRICS_PORTS || '19100 19101 19102 19103 19104').split(/\s+/).map(Number);
const MEASURED = join(ROOT, '.local/deploy-measurements.json');
// The small pods the two workers run in (the rendered default is 2 GiB): the smallest `pipelines deploy` renders,
// and 768Mi for the embedded engine, whose library's pages count too (it peaked at 518-630 MiB in 512Mi pods;
// test/bench/results/2026-12-07-produce.md).
const FORWARD_POD_MIB = Number(process.env.PIPELINES_DEPLOY_FORWARD_MIB || MIN_MEMORY_LIMIT_MIB);
const ANALYTICS_POD_MIB = Number(process.env.PIPELINES_DEPLOY_ANALYTICS_MIB || 768);

/**
 * The first of PORTS nothing listens on (a worker left over by a test whose process crashed held 19100 once, and
 * the container could not bind it), other than those already handed out.
 */
const taken = new Set<number>();
async function scrapedPort(): Promise<number> {
  for (const port of PORTS) {
    if (taken.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (!free) continue;
    taken.add(port);
    return port;
  }
  throw new Error(`every port the stack's Prometheus scrapes (${PORTS.join(', ')}) is taken or handed out`);
}

/**
 * A pod of `limitMiB` as `pipelines deploy --memory-limit` renders it (the manifests test checks the rendering): the
 * container's memory limit and the V8 bounds that go with it, as podman options. The worker must fit: over the
 * limit the kernel kills it (exit 137).
 */
function inPod(limitMiB: number): string[] {
  return ['--memory', `${limitMiB}m`, '-e', `NODE_OPTIONS=${nodeOptionsFor(limitMiB)}`];
}

const podman = (args: string[], timeoutMs = 120_000): Ran => run('podman', args, { timeoutMs });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `podman build` in the background, so that jest's timers keep going; resolves with its seconds. */
function build(target: string, tag: string): Promise<number> {
  const ca = '/etc/ssl/certs/ca-certificates.crt';
  const args = ['build', '--format', 'docker', '--network', 'host', '--target', target, '-t', tag];
  // A registry behind a TLS-inspecting proxy needs the host's CA bundle; a build secret, not kept in the image.
  if (existsSync(ca)) args.push('--secret', `id=ca,src=${ca}`);
  const revision = run('git', ['rev-parse', 'HEAD']).stdout.trim() || 'unknown';
  args.push('--build-arg', `REVISION=${revision}`, '-f', 'deploy/docker/Dockerfile', '.');
  const started = performance.now();
  return new Promise((done, fail) => {
    const child = spawn('podman', args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out = (out + d).slice(-20_000)));
    child.stderr.on('data', (d) => (out = (out + d).slice(-20_000)));
    child.on('error', fail);
    child.on('exit', (code) =>
      code === 0 ? done((performance.now() - started) / 1000) : fail(new Error(`podman build ${target}: ${out}`)),
    );
  });
}

function record(values: Record<string, unknown>): void {
  const before = existsSync(MEASURED) ? JSON.parse(readFileSync(MEASURED, 'utf8')) : {};
  mkdirSync(join(ROOT, '.local'), { recursive: true });
  writeFileSync(MEASURED, `${JSON.stringify({ ...before, ...values }, null, 2)}\n`);
}

/** A metric's value summed over its series, from Prometheus text. */
function metric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.split(' ').at(-1));
  return sum;
}

/** The host pid of the node process in a container (tini is its PID 1, node its only child). */
function nodePid(container: string): number | undefined {
  const tini = podman(['inspect', '-f', '{{.State.Pid}}', container]).stdout.trim();
  if (!tini || tini === '0') return undefined;
  try {
    const child = readFileSync(`/proc/${tini}/task/${tini}/children`, 'utf8').trim().split(/\s+/)[0];
    return child ? Number(child) : undefined;
  } catch {
    return undefined;
  }
}

function peakRssMiB(pid: number): number | undefined {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

describeDeploy('the worker image', () => {
  const id = Date.now().toString(36);
  const topics = {
    ORDERS_TOPIC: `deploy.${id}.orders`,
    CUSTOMERS_TOPIC: `deploy.${id}.customers`,
    PRODUCTS_TOPIC: `deploy.${id}.products`,
    ENRICHED_TOPIC: `deploy.${id}.enriched`,
    STATUS_TOPIC: `deploy.${id}.status`,
    TOTALS_TOPIC: `deploy.${id}.totals`,
    DLQ_TOPIC: `deploy.${id}.dlq`,
  };
  const envArgs = (extra: Record<string, string> = {}) =>
    Object.entries({ PIPELINES_BROKERS: BROKERS, PIPELINES_REGISTRY_URL: REGISTRY, ...topics, ...extra }).flatMap(
      ([k, v]) => ['-e', `${k}=${v}`],
    );
  // As Kubernetes runs it: read-only root, no capabilities, no privilege escalation, a fixed non-root user.
  const hardened = ['--read-only', '--tmpfs', '/tmp', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges'];
  const volume = `pipelines-deploy-${id}`;
  const containers: string[] = [];
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    ok(run('bash', ['-c', 'command -v podman']));
    const seconds = await build('full', FULL);
    const serverSeconds = await build('server', SERVER);
    const size = (tag: string) => Number(podman(['image', 'inspect', '-f', '{{.Size}}', tag]).stdout.trim());
    record({
      buildSeconds: Math.round(seconds),
      serverBuildAfterFullSeconds: Math.round(serverSeconds),
      fullImageMB: Math.round(size(FULL) / 1e6),
      serverImageMB: Math.round(size(SERVER) / 1e6),
    });
    console.log(`built ${FULL} in ${seconds.toFixed(0)} s (${Math.round(size(FULL) / 1e6)} MB) and ${SERVER}`);
  }, 1_500_000);

  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
    for (const c of containers) podman(['rm', '-f', '-t', '0', c]);
    podman(['volume', 'rm', '-f', volume]);
  });

  test('metadata: a fixed non-root user, tini, a health check, OCI labels; chdb only in the full image', () => {
    const [info] = JSON.parse(ok(podman(['image', 'inspect', FULL])).stdout);
    expect(info.Config.User).toBe('10001:10001');
    expect(info.Config.Entrypoint.slice(0, 2)).toEqual(['/usr/bin/tini', '--']);
    expect(info.Healthcheck.Test.join(' ')).toMatch(/healthz/);
    const labels = info.Config.Labels as Record<string, string>;
    expect(labels['org.opencontainers.image.version']).toBe(
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version,
    );
    expect(labels['org.opencontainers.image.revision']).toMatch(/^[0-9a-f]{40}$|^unknown$/);
    expect(labels['org.opencontainers.image.source']).toMatch(/^https:\/\//);
    const load = (image: string, module: string) =>
      podman(['run', '--rm', '--no-healthcheck', '--entrypoint', 'node', image, '-e', `require('${module}')`]);
    ok(load(SERVER, '/app/node_modules/@confluentinc/kafka-javascript'));
    ok(load(FULL, '/app/node_modules/chdb'));
    expect(load(SERVER, '/app/node_modules/chdb').status).not.toBe(0);
  });

  test('pipelines validate in the container: every example topology', () => {
    const files = ['order-analytics', 'order-enrichment', 'order-forward', 'order-status'].map(
      (n) => `/topologies/${n}.yaml`,
    );
    const r = ok(podman(['run', '--rm', '--no-healthcheck', ...hardened, FULL, 'validate', ...files]));
    for (const f of files) expect(r.stdout).toContain(`${f}: ok`);
  });

  test('pipelines validate in the container on the user\'s own folder (-v "$PWD:/work" -w /work)', () => {
    const mine = scratch();
    writeFileSync(join(mine, 'mine.yaml'), topology());
    chmodSync(mine, 0o755); // the image's user (10001) reads the mounted folder
    const r = ok(
      podman([
        'run',
        '--rm',
        '--no-healthcheck',
        ...hardened,
        '-v',
        `${mine}:/work:ro`,
        '-w',
        '/work',
        FULL,
        'validate',
        'mine.yaml',
      ]),
    );
    expect(r.stdout).toContain('mine.yaml: ok');
  });

  test(`order-analytics --until-caught-up over ${ORDERS} orders, scraped from outside, read models complete`, async () => {
    const produced = ok(
      podman(
        [
          'run',
          '--rm',
          '--no-healthcheck',
          '--network',
          'host',
          ...hardened,
          ...envArgs(),
          '--entrypoint',
          'node',
          FULL,
          '/app/pipelines/deploy/generate-orders.ts',
          '--orders',
          String(ORDERS),
          '--seed',
          String(SEED),
        ],
        600_000,
      ),
    );
    const events = [...orderLifecycleStream(ORDERS, { seed: SEED })];
    expect(produced.stdout).toContain(`produced ${events.length} order events`);
    const placed = events.filter((e) => e.eventType === 'OrderPlaced').length;

    const port = await scrapedPort();
    const name = `pipelines-analytics-${id}`;
    containers.push(name);
    ok(podman(['volume', 'create', volume]));
    const started = performance.now();
    ok(
      podman([
        'run',
        '-d',
        '--name',
        name,
        '--network',
        'host',
        ...hardened,
        '-v',
        `${volume}:/data`,
        ...inPod(ANALYTICS_POD_MIB),
        ...envArgs({ PIPELINES_METRICS_ADDRESS: `127.0.0.1:${port}` }),
        FULL,
        'run',
        '/topologies/order-analytics.yaml',
        '--group',
        `deploy-${id}-analytics`,
        '--until-caught-up',
      ]),
    );
    let scraped = 0;
    let healthy = false;
    let peak = 0;
    for (;;) {
      const state = podman(['inspect', '-f', '{{.State.Status}}', name]).stdout.trim();
      const pid = nodePid(name);
      if (pid) peak = Math.max(peak, peakRssMiB(pid) ?? 0);
      if (state !== 'running') break;
      try {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        scraped = Math.max(scraped, metric(text, 'pipelines_records_in_total'));
        // The image's HEALTHCHECK, run by podman as an orchestrator would.
        if (!healthy) healthy = podman(['healthcheck', 'run', name]).status === 0;
      } catch {
        // not listening yet
      }
      if (performance.now() - started > 600_000) throw new Error('the worker did not catch up in 10 minutes');
      await sleep(250);
    }
    const seconds = (performance.now() - started) / 1000;
    const exit = podman(['inspect', '-f', '{{.State.ExitCode}}', name]).stdout.trim();
    const logs = podman(['logs', name]).output;
    // 137: killed, as the memory limit does to a worker that outgrows it.
    expect(`exit ${exit}`).toBe('exit 0');
    expect(healthy).toBe(true);
    expect(scraped).toBeGreaterThan(0);
    expect(peak).toBeGreaterThan(50);
    record({
      orders: ORDERS,
      events: events.length,
      analyticsSeconds: Math.round(seconds),
      analyticsPodMiB: ANALYTICS_POD_MIB,
      analyticsPeakRssMiB: Math.round(peak),
    });
    console.log(
      `order-analytics in a ${ANALYTICS_POD_MIB}Mi pod: ${events.length} events in ${seconds.toFixed(1)} s, peak RSS ${peak.toFixed(0)} MiB`,
    );

    // The read models, read back through the same image and volume: every placed order counted once.
    const q = ok(
      podman([
        'run',
        '--rm',
        '--no-healthcheck',
        ...hardened,
        '-v',
        `${volume}:/data`,
        FULL,
        'clickhouse',
        'query',
        'SELECT sum(orders) AS n FROM revenue_by_segment_1m',
        '--json',
      ]),
    );
    const n = Number((JSON.parse(q.stdout.trim().split('\n')[0]!) as { n: string | number }).n);
    expect({ placed: n, log: n === placed ? '' : logs.slice(-3000) }).toEqual({ placed, log: '' });
  }, 1_300_000);

  test('the server image runs order-forward: scraped by the stack Prometheus, stopped cleanly by SIGTERM', async () => {
    const port = await scrapedPort();
    const name = `pipelines-forward-${id}`;
    containers.push(name);
    ok(
      podman([
        'run',
        '-d',
        '--name',
        name,
        '--network',
        'host',
        ...hardened,
        ...inPod(FORWARD_POD_MIB),
        ...envArgs({ PIPELINES_METRICS_ADDRESS: `127.0.0.1:${port}` }),
        SERVER,
        'run',
        '/topologies/order-forward.yaml',
        '--group',
        `deploy-${id}-forward`,
      ]),
    );
    // The real Prometheus of the local stack scrapes this port: wait until it has seen every event go in, so that
    // the peak RSS is the whole topic's in a small pod.
    const query = `sum(pipelines_records_in_total{instance="127.0.0.1:${port}"})`;
    const events = [...orderLifecycleStream(ORDERS, { seed: SEED })].length;
    const started = performance.now();
    let seen = 0;
    let peak = 0;
    for (let i = 0; i < 480 && seen < events; i++) {
      await sleep(500);
      const pid = nodePid(name);
      if (pid) peak = Math.max(peak, peakRssMiB(pid) ?? 0);
      const r = await fetch(`${PROMETHEUS}/api/v1/query?query=${encodeURIComponent(query)}`).catch(() => undefined);
      const body = r?.ok ? ((await r.json()) as { data: { result: { value: [number, string] }[] } }) : undefined;
      seen = Number(body?.data.result[0]?.value[1] ?? 0);
      expect(podman(['inspect', '-f', '{{.State.Status}}', name]).stdout.trim()).toBe('running');
    }
    expect(seen).toBe(events);
    record({ forwardPodMiB: FORWARD_POD_MIB, forwardPeakRssMiB: Math.round(peak) });
    console.log(
      `order-forward in a ${FORWARD_POD_MIB}Mi pod: ${events} events within ${((performance.now() - started) / 1000).toFixed(1)} s` +
        ` (as scraped), peak RSS ${peak.toFixed(0)} MiB`,
    );
    // tini passes the signal to node: the worker finishes its batch, commits, leaves the group, exits 0.
    const stopped = performance.now();
    ok(podman(['stop', '-t', '40', name], 60_000));
    const seconds = (performance.now() - stopped) / 1000;
    const exit = podman(['inspect', '-f', '{{.State.ExitCode}}', name]).stdout.trim();
    expect(`exit ${exit}`).toBe('exit 0');
    expect(podman(['logs', name]).output).toMatch(/stopping: finishing the batch in hand/);
    expect(seconds).toBeLessThan(25);
  }, 300_000);
});
