// kill -9 of a worker process running order-totals (three stages: the source, then a repartition by segment and
// one by customer), at random moments in the first part of the stream, started again each time; the last one runs
// through the rest of the stream and the closing orders (which close every window), and a final worker runs with
// --until-caught-up, which waits for every stage. Both read models equal the oracle.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endOffsets } from '../../pipelines/kafka/offsets.ts';
import type { ExpectedReadModels } from '../../pipelines/loadgen/expected.ts';
import { seededRandom } from '../../pipelines/loadgen/orders.ts';
import { openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import type { Tally } from '../faults/compare.ts';
import { createTopics, spawnWorker, stack, testTopics, type WorkerProcess } from './harness.ts';
import { closingOrders, loadgen, orderTotalsModels, waitFor } from './scale-out.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('order-totals killed -9 three times during the stream: every stage resumes, both read models exact', async () => {
  const rnd = seededRandom(9);
  const topics = testTopics('repartition-kill');
  await createTopics(topics, 6);
  const dir = mkdtempSync(join(tmpdir(), 'repartition-kill-'));
  const file = join(dir, 'expected.json');
  // A static member, as a container restarted in its pod: it takes its partitions back at once, where a new
  // dynamic member would wait for the killed one's session to time out.
  const env = { ...topics, PIPELINES_CLICKHOUSE_PATH: join(dir, 'ch'), PIPELINES_GROUP_INSTANCE_ID: 'totals-0' };
  const args = ['--group', `kill-totals-${Date.now()}`];
  const start = (n: number, extra: string[] = []) =>
    spawnWorker('topologies/order-totals.yaml', env, [...args, ...extra], `repartition-kill-${n}`);
  const assigned = (w: WorkerProcess) =>
    waitFor('the worker to have its partitions', async () =>
      /"partitions":\[\d[^\]]*\],"msg":"partitions assigned"/.test(readFileSync(w.log, 'utf8')),
    );
  const gen = loadgen({ orders: 20_000, seed: 9, rate: 2000 }, topics, file);
  try {
    // The snapshots first: the lookup table is read to its end at start.
    const kafka = stack().conn.kafka;
    const total = (m: Map<number, bigint>) => [...m.values()].reduce((n, x) => n + Number(x), 0);
    await waitFor('the snapshots', async () => total(await endOffsets(kafka, topics.CUSTOMERS_TOPIC)) >= 500);
    let worker = start(0);
    for (let k = 1; k <= 3; k++) {
      await assigned(worker);
      await sleep(1000 + rnd() * 1500);
      worker.child.kill('SIGKILL');
      expect(await worker.exited).toBeNull();
      worker = start(k);
    }
    await gen.done;
    await assigned(worker);
    await sleep(3000);
    await closingOrders(topics);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    const last = start(4, ['--until-caught-up']);
    expect(await last.exited).toBe(0);

    const expected = JSON.parse(readFileSync(file, 'utf8')) as { events: number; readModels: ExpectedReadModels };
    const engine = openClickHouse({ kind: 'embedded', path: join(dir, 'ch') });
    const models: Record<string, Tally> = {};
    let open: Record<string, number>;
    try {
      open = await orderTotalsModels(engine, expected.readModels, models);
    } finally {
      await engine.close();
    }
    console.log(`${expected.events} events; ${JSON.stringify(models)}; open ${JSON.stringify(open)}`);
    for (const [model, tally] of Object.entries(models))
      expect({ model, lost: tally.lost, duplicated: tally.duplicated, exact: tally.exact }).toEqual({
        model,
        lost: 0,
        duplicated: 0,
        exact: true,
      });
    expect(open.segment_revenue_final_1m).toBe(0);
    expect(models.segment_revenue_final_1m!.expected).toBe(20_000);
  } finally {
    gen.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}, 600_000);
