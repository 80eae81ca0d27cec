// Rebuild by replay on the real stack: a live order-analytics worker catches up, `pipelines replay --into v2
// --swap` rebuilds its tables from the earliest offsets and swaps them in (run again, it neither writes on nor
// swaps back), more orders arrive, the live worker carries on from the rebuild's position: every read model equals
// SQL over all raw events (nothing missed, nothing counted twice across the hand-over), and the old tables are
// kept under the suffix.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { customerSnapshots, type OrderEvent, orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import { openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import { createTopics, produceOrders, produceSnapshots, spawnWorker, stopWorkers, testTopics } from './harness.ts';
import { compareReadModel, loadRawEvents, TOPOLOGY_MODELS } from './read-models.ts';

jest.setTimeout(300_000);
afterEach(stopWorkers);

const FILE = 'topologies/order-analytics.yaml';

function replay(env: Record<string, string>, args: string[]): Promise<{ code: number | null; err: string }> {
  const child = spawn(process.execPath, ['pipelines/cli/main.ts', 'replay', FILE, ...args], {
    env: { ...process.env, PIPELINES_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, err })));
}

test('replay --into v2 --swap rebuilds the tables, swaps them in, and the live worker carries on exactly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pipelines-ch-replay-'));
  const topics = testTopics('replay');
  const env = { ...topics, PIPELINES_CLICKHOUSE_PATH: dir };
  const group = `replay-live-${Date.now()}`;
  try {
    await createTopics(topics);
    await produceSnapshots(topics);
    const first: OrderEvent[] = [...orderLifecycleStream(8000, { seed: 3 })];
    await produceOrders(topics, first);
    const live = spawnWorker(FILE, env, ['--group', group, '--until-caught-up'], 'replay-live-1');
    expect(await live.exited).toBe(0);

    // The swap refuses while the live group has members (before it opens ClickHouse, which the worker holds).
    const running = spawnWorker(FILE, env, ['--group', group], 'replay-live-running');
    while (!(existsSync(running.log) && readFileSync(running.log, 'utf8').includes('partitions assigned'))) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const refused = await replay(env, ['--into', 'v2', '--swap', '--group', group]);
    expect(refused.err).toMatch(/--swap: the live group '.*' has members; stop its workers first/);
    expect(refused.code).toBe(1);
    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(0);

    const r = await replay(env, ['--into', 'v2', '--swap', '--group', group]);
    expect(r.err).toMatch(/rebuilding revenue_by_segment_1m_v2, revenue_by_product_1m_v2, customer_ltv_v2/);
    expect(r.err).toMatch(/100\.0% (\d+)\/\1 offsets, \d+\/s, ETA 0s/);
    expect(r.err).toMatch(/swapped revenue_by_segment_1m <-> revenue_by_segment_1m_v2/);
    expect(r.code).toBe(0);
    // Run again: the rebuild is not written on (its tables are the old ones now), nor swapped back.
    const again = await replay(env, ['--into', 'v2', '--group', group]);
    expect(again.err).toMatch(/revenue_by_segment_1m already holds the rebuild --into v2: add --swap to finish/);
    expect(again.code).toBe(1);
    const finish = await replay(env, ['--into', 'v2', '--swap', '--group', group]);
    expect(finish.err).toMatch(/already swapped revenue_by_segment_1m <-> revenue_by_segment_1m_v2/);
    expect(finish.err).not.toMatch(/^swapped /m);
    expect(finish.code).toBe(0);

    // More orders (later in event time), then the live worker again, from its own committed offsets.
    const more = [...orderLifecycleStream(4000, { seed: 4, startTime: Date.UTC(2026, 0, 2) })];
    await produceOrders(topics, more);
    const after = spawnWorker(FILE, env, ['--group', group, '--until-caught-up'], 'replay-live-2');
    expect(await after.exited).toBe(0);

    const ch = openClickHouse({ kind: 'embedded', path: dir });
    try {
      await loadRawEvents(ch, [...first, ...more], customerSnapshots());
      for (const model of TOPOLOGY_MODELS[FILE]!) {
        const c = await compareReadModel(ch, model);
        expect(c).toEqual({ model, rows: c.rows, actualRows: c.rows, unexpected: [], missing: [] });
      }
      // The tables of the first live run are kept under the suffix: the first orders only.
      const old = await ch.client.query({
        query: 'SELECT sum(orders) AS n FROM revenue_by_segment_1m_v2',
        format: 'JSONEachRow',
      });
      expect(Number((await old.json<{ n: string }>())[0]!.n)).toBe(8000);
    } finally {
      await ch.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
