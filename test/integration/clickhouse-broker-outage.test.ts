// A broker outage under a worker that writes to the embedded ClickHouse (issue 15, defect 2: after a 30 s outage
// the engine reported a fatal error and the worker exited). The worker must ride the outage out, or stop with the
// clear member-lost error and finish on a restart; either way every read model equals SQL over the raw events.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { customerSnapshots, orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import { openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import {
  createTopics,
  produceOrders,
  produceSnapshots,
  spawnWorker,
  stopWorkers,
  testTopics,
  waitForLog,
} from './harness.ts';
import { compareReadModel, loadRawEvents, TOPOLOGY_MODELS } from './read-models.ts';

jest.setTimeout(480_000);
afterEach(stopWorkers);

const FILE = 'topologies/order-analytics.yaml';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const stack = (...args: string[]) => promisify(execFile)('bash', ['deploy/local/stack', ...args]);

test('order-analytics into embedded ClickHouse through a 30 s broker outage: read models exact', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ch-outage-'));
  try {
    const topics = testTopics('ch-outage');
    await createTopics(topics);
    await produceSnapshots(topics);
    const events = [...orderLifecycleStream(30_000, { seed: 23 })];
    await produceOrders(topics, events);
    const env = { ...topics, PIPELINES_CLICKHOUSE_PATH: dir, PIPELINES_CLICKHOUSE_FLUSH_ROWS: '2000' };
    const w = spawnWorker(FILE, env, ['--until-caught-up'], 'ch-outage');
    await waitForLog(w, 'partitions assigned');
    await sleep(300);
    await stack('down', 'kafka');
    await sleep(30_000);
    await stack('up', 'kafka');
    const rc = await w.exited;
    const log = readFileSync(w.log, 'utf8');
    expect(log).not.toContain('fatal error');
    if (rc !== 0) {
      expect(log).toContain('the consumer group dropped this worker');
      const again = spawnWorker(FILE, env, ['--until-caught-up'], 'ch-outage-restart');
      expect(await again.exited).toBe(0);
    }
    console.log(`30 s outage under order-analytics: the first worker exited ${rc}`);
    const ch = openClickHouse({ kind: 'embedded', path: dir });
    try {
      await loadRawEvents(ch, events, customerSnapshots());
      for (const model of TOPOLOGY_MODELS[FILE]!) {
        const c = await compareReadModel(ch, model);
        expect(c).toEqual({ model, rows: c.rows, actualRows: c.rows, unexpected: [], missing: [] });
        expect(c.rows).toBeGreaterThan(0);
      }
    } finally {
      await ch.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
