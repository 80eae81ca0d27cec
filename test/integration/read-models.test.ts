// The order read models, exactly once under kill -9, on the real stack: 200k+ order events on Kafka, each example
// topology run as a worker that is SIGKILLed at random moments (at least five times), restarted, and finally run
// until caught up. Then every read model, read as the README documents it, must equal SQL over the raw events
// loaded into the same embedded ClickHouse: no missing row, nothing counted twice.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { clientConfig } from '../../pipelines/kafka/connection.ts';
import { customerSnapshots, type OrderEvent, orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import { openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import {
  createTopics,
  produceOrders,
  produceSnapshots,
  spawnWorker,
  stack,
  stopWorkers,
  testTopics,
  type WorkerProcess,
} from './harness.ts';
import { compareReadModel, loadRawEvents, TOPOLOGY_MODELS } from './read-models.ts';

jest.setTimeout(900_000);
afterEach(stopWorkers);

const EVENTS = Number(process.env.READ_MODELS_EVENTS ?? 200_000);
const KILLS = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForLog(w: WorkerProcess, text: string, timeoutMs = 60_000): Promise<boolean> {
  const { existsSync, readFileSync } = await import('node:fs');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(w.log) && readFileSync(w.log, 'utf8').includes(text)) return true;
    if (w.child.exitCode !== null) return false;
    await sleep(50);
  }
  throw new Error(`worker log ${w.log} never said '${text}'`);
}

async function committed(group: string, topic: string): Promise<bigint> {
  const { conn } = stack();
  const admin = new KafkaJS.Kafka({
    ...clientConfig(conn.kafka),
    kafkaJS: { logLevel: KafkaJS.logLevel.ERROR },
  } as never).admin();
  await admin.connect();
  const [c] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  await admin.disconnect();
  return (c?.partitions ?? []).reduce((n, p) => n + (BigInt(p.offset) > 0n ? BigInt(p.offset) : 0n), 0n);
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

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test(`${EVENTS} events: every read model equals SQL over the raw events after ${KILLS}+ kill -9 per topology`, async () => {
  expect(events.length).toBeGreaterThanOrEqual(EVENTS);
  const env = { ...topics, PIPELINES_CLICKHOUSE_PATH: dir };
  const report: string[] = [];
  // One worker process at a time on the data directory; the test opens it only after the last one exited.
  for (const file of Object.keys(TOPOLOGY_MODELS)) {
    const progress: string[] = [];
    let midRun = 0;
    let group = '';
    for (let kill = 0; kill < KILLS; kill++) {
      // A new consumer group for each restart: a group whose only member was killed -9 waits for the session
      // timeout (~30 s) before it can rebalance. The ClickHouse sinks do not need the group's offsets: they
      // skip what their offsets log says they hold and replay its last range exactly (the harder case).
      group = `read-models-${file.replace(/\W/g, '-')}-${Date.now()}-${kill}`;
      const w = spawnWorker(file, env, ['--group', group], `read-models-kill-${kill}`);
      if (!(await waitForLog(w, 'partitions assigned'))) throw new Error(`worker exited early, see ${w.log}`);
      await sleep(300 + Math.random() * 2500);
      w.child.kill('SIGKILL');
      expect(await w.exited).toBe(null);
      const at = await committed(group, topics.ORDERS_TOPIC);
      if (at < BigInt(events.length)) midRun++;
      progress.push(String(at));
    }
    // The last restart rejoins the group of the last killed worker (its committed offsets, after the session
    // timeout): the path a redeployed worker takes.
    const done = spawnWorker(file, env, ['--group', group, '--until-caught-up'], 'read-models-final');
    expect(await done.exited).toBe(0);
    // The kills really came in mid-run: the group had not committed everything yet when they hit.
    expect(midRun).toBe(KILLS);
    report.push(`${file}: committed offsets at each kill: ${progress.join(', ')} of ${events.length}`);
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
