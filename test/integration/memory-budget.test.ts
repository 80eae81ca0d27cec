// The memory budget on a real worker: `pipelines run` with PIPELINES_MEMORY_BUDGET sizes its buffers from it, says so
// at start, and exports the budget, the bounds and what its sinks hold on /metrics.
import { orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import { createTopics, freePort, produceOrders, spawnWorker, stopWorkers, testTopics, waitForLog } from './harness.ts';

jest.setTimeout(120_000);
afterEach(stopWorkers);

const MiB = 1024 ** 2;

test('a 256Mi budget: the bounds it gives are the ones in use, logged and on /metrics', async () => {
  const topics = testTopics('memory-budget');
  await createTopics(topics);
  await produceOrders(topics, orderLifecycleStream(500, { seed: 9 }));
  const port = await freePort();
  const w = spawnWorker(
    'topologies/order-forward.yaml',
    { ...topics, TOTALS_TOPIC: `${topics.ORDERS_TOPIC}.totals`, PIPELINES_MEMORY_BUDGET: '256Mi' },
    ['--metrics', `127.0.0.1:${port}`, '--group', `memory-budget-${Date.now()}`],
  );
  await waitForLog(w, '"msg":"partitions assigned"');
  // One stage and no lookup table: one consumer takes the whole prefetch share (10%), one stage the rows' (20%).
  const share = (256 * MiB) / 10;
  await waitForLog(
    w,
    `"budget":"256 MiB (PIPELINES_MEMORY_BUDGET)","prefetchKbytes":16384,"fetchMaxBytes":${Math.floor(share)}`,
  );
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(metrics)?.[1]);
  expect(value('pipelines_memory_budget_bytes')).toBe(256 * MiB);
  expect(value('pipelines_prefetch_bound_bytes')).toBe(16 * MiB);
  expect(value('pipelines_sink_buffer_bound_rows')).toBe(Math.floor((256 * MiB * 0.2) / 512));
  expect(metrics).toMatch(/^pipelines_sink_buffered_rows\{topology="order-forward",sink="kafka:[^"]+"\} \d+$/m);
});
