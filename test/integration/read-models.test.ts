// The order read models, exactly once under kill -9, on the real stack: 200k+ order events on Kafka, each example
// topology run as a worker that is SIGKILLed at random moments (at least five times), restarted, and finally run
// until caught up. Then every read model, read as pipelines/sinks/clickhouse/README.md documents it, must equal
// SQL over the raw events loaded into the same embedded ClickHouse: no missing row, nothing counted twice.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { customerSnapshots, type OrderEvent, orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import { openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import {
  createTopics,
  freePort,
  produceOrders,
  produceSnapshots,
  recordsIn,
  spawnWorker,
  stopWorkers,
  testTopics,
  type WorkerProcess,
} from './harness.ts';
import { compareReadModel, loadRawEvents, TOPOLOGY_MODELS } from './read-models.ts';

jest.setTimeout(900_000);
afterEach(stopWorkers);

const EVENTS = Number(process.env.READ_MODELS_EVENTS ?? 200_000);
// Six kills, of which at least five must land before the end: the worker's counter is read over HTTP and the
// embedded engine's inserts hold its event loop, so a reading can lag a flush behind and a kill come late.
const KILLS = 6;
const MIN_KILLS_IN_RUN = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Records up to the end of the last recorded range, summed over partitions, from a restarted worker's log. */
function clickHousePosition(log: string): number {
  const next = new Map<number, number>();
  for (const line of log.split('\n')) {
    if (!line.includes('replaying a range the sink may hold')) continue;
    const r = JSON.parse(line) as { partition: number; last: string };
    next.set(r.partition, Math.max(next.get(r.partition) ?? 0, Number(r.last) + 1));
  }
  return [...next.values()].reduce((a, b) => a + b, 0);
}

async function waitForLog(w: WorkerProcess, text: string, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(w.log) && readFileSync(w.log, 'utf8').includes(text)) return true;
    if (w.child.exitCode !== null) return false;
    await sleep(50);
  }
  throw new Error(`worker log ${w.log} never said '${text}'`);
}

let dir: string;
let events: OrderEvent[];
let topics: ReturnType<typeof testTopics>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pipelines-read-models-'));
  topics = testTopics('read-models');
  await createTopics(topics);
  await produceSnapshots(topics);
  // ~2.85 events per order: enough orders for EVENTS events.
  events = [...orderLifecycleStream(Math.ceil(EVENTS / 2.8), { seed: 11 })];
  await produceOrders(topics, events);
}, 300_000);

afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test(`${EVENTS} events: every read model equals SQL over the raw events after ${MIN_KILLS_IN_RUN}+ kill -9 per topology`, async () => {
  expect(events.length).toBeGreaterThanOrEqual(EVENTS);
  // Flushes of 2,000 rows: many recorded ranges per partition, so that kills land between and inside them (with
  // the default 50,000 rows or 1 s, the fast topology writes its whole input in one flush).
  const env = { ...topics, PIPELINES_CLICKHOUSE_PATH: dir, PIPELINES_CLICKHOUSE_FLUSH_ROWS: '2000' };
  const report: string[] = [];
  // One worker process at a time on the data directory; the test opens it only after the last one exited.
  for (const file of Object.keys(TOPOLOGY_MODELS)) {
    let group = '';
    const logs: string[] = [];
    for (let kill = 0; kill < KILLS; kill++) {
      // A new consumer group for each restart: a group whose only member was killed -9 waits for the session
      // timeout (~30 s) before it can rebalance. The ClickHouse sinks do not need the group's offsets: they
      // skip what their offsets log says they hold and replay its last range exactly (the harder case).
      group = `read-models-${file.replace(/\W/g, '-')}-${Date.now()}-${kill}`;
      const port = await freePort();
      const w = spawnWorker(
        file,
        env,
        ['--group', group, '--metrics', `127.0.0.1:${port}`],
        `read-models-kill-${kill}`,
      );
      logs.push(w.log);
      if (!(await waitForLog(w, 'partitions assigned'))) throw new Error(`worker exited early, see ${w.log}`);
      // Kills spread over the run: the k-th lands once the worker has read about k/(KILLS+2) of the input (its
      // own records-in counter, which moves per batch; committed offsets move per flush, in jumps that can pass
      // the end), jittered by a quarter of that step, then a random 0-150 ms more: it hits a batch, a flush or
      // a commit anywhere, before the end.
      const step = events.length / (KILLS + 2);
      const target = Math.floor(step * (kill + 1) + (Math.random() - 0.5) * (step / 2));
      const deadline = Date.now() + 180_000;
      while ((await recordsIn(port)) < target) {
        if (w.child.exitCode !== null) throw new Error(`worker exited before the kill, see ${w.log}`);
        if (Date.now() > deadline) throw new Error(`no progress to ${target}, see ${w.log}`);
        await sleep(10);
      }
      await sleep(Math.random() * 150);
      w.child.kill('SIGKILL');
      expect(await w.exited).toBe(null);
    }
    // The last restart rejoins the group of the last killed worker (its committed offsets, after the session
    // timeout): the path a redeployed worker takes.
    const done = spawnWorker(file, env, ['--group', group, '--until-caught-up'], 'read-models-final');
    logs.push(done.log);
    expect(await done.exited).toBe(0);
    // Where ClickHouse was at each kill, from the ranges the next run found in the offsets log: every kill came
    // before the end, and not all at the same place.
    const positions = logs.slice(1).map((log) => clickHousePosition(readFileSync(log, 'utf8')));
    report.push(`${file}: ClickHouse offsets log at each kill: ${positions.join(', ')} of ${events.length}`);
    console.log(report.at(-1));
    expect(positions.filter((p) => p < events.length).length).toBeGreaterThanOrEqual(MIN_KILLS_IN_RUN);
    expect(new Set(positions).size).toBeGreaterThan(1);
  }
  const ch = openClickHouse({ kind: 'embedded', path: dir });
  try {
    await loadRawEvents(ch, events, customerSnapshots());
    for (const models of Object.values(TOPOLOGY_MODELS)) {
      for (const model of models) {
        const c = await compareReadModel(ch, model);
        report.push(`${model}: ${c.actualRows} rows (expected ${c.rows})`);
        expect(c).toEqual({ model, rows: c.rows, actualRows: c.rows, unexpected: [], missing: [] });
        expect(c.rows).toBeGreaterThan(0);
      }
    }
  } finally {
    await ch.close();
    console.log(report.join('\n'));
  }
});
