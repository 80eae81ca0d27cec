// The registry down when a worker starts: it waits with backoff, says what for in its log and in /readyz
// (503, /healthz stays 200), starts once the registry answers, and gives up only at the start-up deadline,
// with one line that says what it waited for.
import { createServer, type Server } from 'node:http';
import { orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import {
  createTopics,
  freePort,
  produceOrders,
  produceSnapshots,
  spawnWorker,
  stopWorkers,
  testTopics,
  waitForLog,
} from './harness.ts';
import { localStack } from './stack.ts';

jest.setTimeout(180_000);
afterEach(stopWorkers);

const TOPOLOGY = 'topologies/order-enrichment.yaml';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A stand-in for the registry on its own port: refuses until started, then forwards to the real one. */
function lateRegistry(port: number) {
  const real = new URL(localStack().registryUrl);
  let server: Server | undefined;
  return {
    url: `http://127.0.0.1:${port}${real.pathname}`,
    start: () =>
      new Promise<void>((resolve) => {
        server = createServer(async (req, res) => {
          const body = await new Promise<Buffer>((r) => {
            const parts: Buffer[] = [];
            req.on('data', (c: Buffer) => parts.push(c)).on('end', () => r(Buffer.concat(parts)));
          });
          const answer = await fetch(`${real.origin}${req.url}`, {
            method: req.method,
            headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
            ...(body.length > 0 ? { body } : {}),
          });
          res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
          res.end(Buffer.from(await answer.arrayBuffer()));
        }).listen(port, '127.0.0.1', () => resolve());
      }),
    stop: () => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
  };
}

async function probe(port: number, path: string) {
  const r = await fetch(`http://127.0.0.1:${port}${path}`).catch(() => undefined);
  return r ? { status: r.status, body: await r.text() } : undefined;
}

test('waits for a registry that is down at start, not ready meanwhile, then runs', async () => {
  const topics = testTopics('registry-late');
  await createTopics(topics);
  await produceSnapshots(topics);
  await produceOrders(topics, [...orderLifecycleStream(200, { seed: 7 })]);
  const registry = lateRegistry(await freePort());
  const metrics = await freePort();
  const w = spawnWorker(
    TOPOLOGY,
    { ...topics, PIPELINES_REGISTRY_URL: registry.url },
    ['--metrics', `127.0.0.1:${metrics}`],
    'registry-late',
  );
  try {
    await waitForLog(w, 'schema registry failed, retrying');
    const ready = await probe(metrics, '/readyz');
    expect(ready?.status).toBe(503);
    expect(ready?.body).toContain(`waiting for the schema registry at ${registry.url}`);
    expect((await probe(metrics, '/healthz'))?.status).toBe(200);
    await sleep(2_000);
    await registry.start();
    await waitForLog(w, 'partitions assigned');
    for (let i = 0; i < 100 && (await probe(metrics, '/readyz'))?.status !== 200; i++) await sleep(200);
    expect((await probe(metrics, '/readyz'))?.status).toBe(200);
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
  } finally {
    await registry.stop();
  }
});

test('gives up at the start-up deadline with one line naming what it waited for', async () => {
  const topics = testTopics('registry-never');
  await createTopics(topics);
  const port = await freePort();
  const started = Date.now();
  const w = spawnWorker(
    TOPOLOGY,
    {
      ...topics,
      PIPELINES_REGISTRY_URL: `http://127.0.0.1:${port}/apis/ccompat/v7`,
      PIPELINES_STARTUP_TIMEOUT_MS: '4000',
    },
    [],
    'registry-never',
  );
  expect(await w.exited).toBe(1);
  expect(Date.now() - started).toBeLessThan(30_000);
  const { readFileSync } = await import('node:fs');
  const log = readFileSync(w.log, 'utf8');
  expect(log).toMatch(
    /pipelines run: error: gave up starting after 4 s waiting for the schema registry at http:\/\/127\.0\.0\.1:\d+\/apis\/ccompat\/v7 .*PIPELINES_STARTUP_TIMEOUT_MS/,
  );
  expect(log).not.toMatch(/internal error|\n\s+at /);
});
