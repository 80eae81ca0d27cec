// The embedded ClickHouse is one worker's: a second worker joining the group with its own embedded engine is
// refused (one line naming PIPELINES_CLICKHOUSE_URL) before it writes anything, and the first one goes on.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import { createTopics, produceOrders, spawnWorker, stopWorkers, testTopics, waitForLog } from './harness.ts';

jest.setTimeout(180_000);
afterEach(stopWorkers);

test('a second worker with its own embedded ClickHouse is refused; the first keeps its partitions', async () => {
  const topics = testTopics('embedded-alone');
  await createTopics(topics);
  await produceOrders(topics, [...orderLifecycleStream(300, { seed: 3 })]);
  const dir = mkdtempSync(join(tmpdir(), 'embedded-alone-'));
  const group = `embedded-alone-${Date.now()}`;
  const env = (n: number) => ({ ...topics, PIPELINES_CLICKHOUSE_PATH: join(dir, `chdb-${n}`) });
  const first = spawnWorker('topologies/order-status.yaml', env(1), ['--group', group], 'embedded-first');
  await waitForLog(first, 'partitions assigned');

  const second = spawnWorker('topologies/order-status.yaml', env(2), ['--group', group], 'embedded-second');
  expect(await second.exited).toBe(1);
  const log = readFileSync(second.log, 'utf8');
  expect(log).toMatch(
    /embedded ClickHouse holds this worker's read models alone, but its consumer group has 2 members/,
  );
  expect(log).toMatch(/pipelines run: error: the worker stopped: the embedded ClickHouse .*PIPELINES_CLICKHOUSE_URL\n/);
  expect(log).not.toMatch(/internal error|\n\s+at /);

  // The first one is still running, and gets the partitions back once the second has left.
  await new Promise((r) => setTimeout(r, 1000));
  expect(first.child.exitCode).toBeNull();
  first.child.kill('SIGTERM');
  expect(await first.exited).toBe(0);
});
