// `pipelines loadgen` as a user runs it, on the real stack: the order stream and snapshots to Kafka, its expected
// read models to a file; then the example topologies into embedded ClickHouse, and every read model, read with
// the documented queries, equals the file (computed from the generated events by the load generator's own code).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExpectedReadModels } from '../../pipelines/loadgen/expected.ts';
import { openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import { spawnWorker, stopWorkers, testTopics } from './harness.ts';
import { QUERIES } from './read-models.ts';

jest.setTimeout(300_000);
afterEach(stopWorkers);

/** ClickHouse's text values as the expected file writes them: ISO times, numbers, money to the cent. */
function normalise(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    if (typeof v === 'string' && /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/.test(v)) {
      out[k] = new Date(`${v.replace(' ', 'T')}Z`).toISOString();
    } else if (k === 'revenue') out[k] = Math.round(Number(v) * 100) / 100;
    else if (typeof v === 'string' && /^\d+$/.test(v)) out[k] = Number(v);
    else out[k] = v;
  }
  return out;
}

test('loadgen writes a seeded stream whose read models match its expected file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loadgen-'));
  try {
    const topics = testTopics('loadgen');
    const file = join(dir, 'expected.json');
    const gen = spawnSync(
      process.execPath,
      ['pipelines/cli/main.ts', 'loadgen', '--orders', '4000', '--seed', '9', '--expected', file],
      { encoding: 'utf8', env: { ...process.env, ...topics } },
    );
    expect({ code: gen.status, err: gen.stderr }).toEqual({ code: 0, err: '' });
    expect(gen.stdout).toMatch(/\d+ events \(4000 orders, seed 9\)/);
    const expected = JSON.parse(readFileSync(file, 'utf8')) as { events: number; readModels: ExpectedReadModels };
    expect(expected.events).toBeGreaterThan(10_000);

    const env = { ...topics, PIPELINES_CLICKHOUSE_PATH: join(dir, 'ch') };
    for (const topology of ['topologies/order-analytics.yaml', 'topologies/order-status.yaml']) {
      const w = spawnWorker(topology, env, ['--until-caught-up'], 'loadgen');
      expect(await w.exited).toBe(0);
    }
    const ch = openClickHouse({ kind: 'embedded', path: join(dir, 'ch') });
    try {
      const read = async (query: string) =>
        ((await (await ch.client.query({ query, format: 'JSONEachRow' })).json()) as Record<string, unknown>[]).map(
          normalise,
        );
      for (const model of ['revenue_by_segment_1m', 'revenue_by_product_1m', 'customer_ltv'] as const) {
        expect({ model, rows: await read(QUERIES[model]) }).toEqual({ model, rows: expected.readModels[model] });
      }
      const funnel = (await read(QUERIES.order_funnel)).map(({ hour, placed, paid, shipped, cancelled }) => ({
        hour,
        placed,
        paid,
        shipped,
        cancelled,
      }));
      expect(funnel).toEqual(expected.readModels.order_funnel);
      const status = await read('SELECT status, count() AS n FROM order_summary FINAL GROUP BY status ORDER BY status');
      expect(Object.fromEntries(status.map((r) => [r.status, r.n]))).toEqual(expected.readModels.order_status);
    } finally {
      await ch.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
