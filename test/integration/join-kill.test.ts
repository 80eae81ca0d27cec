// The order-timeline example on the real stack: orders, payments and shipments on three topics, two left joins,
// five stages in one worker process, killed -9 at random moments while the three services write and started
// again each time (a static member, as a container restarted in its pod). Then event time is moved past every
// window and a worker runs --until-caught-up; every order has one row, equal to the oracle's.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRandom } from '../../pipelines/loadgen/orders.ts';
import { expectedTimeline, produceTimeline, timelineEvents } from '../../pipelines/loadgen/timeline.ts';
import { openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import { spawnWorker, stack, type WorkerProcess } from './harness.ts';
import { waitFor } from './scale-out.ts';
import { closeWindows, compareTimeline, expectExact, type TimelineTally, timelineTopics } from './timeline.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ORDERS = Number(process.env.JOIN_ORDERS ?? 20_000);

test('order-timeline killed -9 three times while three topics are written: one exact row per order', async () => {
  const rnd = seededRandom(21);
  const topics = await timelineTopics('join-kill');
  const { conn, codec } = stack();
  const dir = mkdtempSync(join(tmpdir(), 'join-kill-'));
  const env = { ...topics, PIPELINES_CLICKHOUSE_PATH: join(dir, 'ch'), PIPELINES_GROUP_INSTANCE_ID: 'timeline-0' };
  const args = ['--group', `kill-timeline-${Date.now()}`];
  let n = 0;
  const start = (extra: string[] = []) =>
    spawnWorker('topologies/order-timeline.yaml', env, [...args, ...extra], `join-kill-${n++}`);
  const assigned = (w: WorkerProcess) =>
    waitFor('the worker to have its partitions', async () =>
      /"partitions":\[\d[^\]]*\],"msg":"partitions assigned"/.test(readFileSync(w.log, 'utf8')),
    );
  // The orders within ten minutes of event time: no record is later than its window, however far one stage runs
  // ahead of another after a kill; the windows close when closeWindows moves event time on.
  const t0 = Date.UTC(2026, 5, 1);
  const events = timelineEvents(ORDERS, { seed: 21, start: t0, span: 10 * 60_000 });
  const written = produceTimeline(conn.kafka, codec, topics, events, 4000);
  written.catch(() => {});
  try {
    let worker = start();
    for (let k = 1; k <= 3; k++) {
      await assigned(worker);
      await sleep(1000 + rnd() * 2500);
      worker.child.kill('SIGKILL');
      expect(await worker.exited).toBeNull();
      worker = start();
    }
    await written;
    await assigned(worker);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    await closeWindows(topics, t0, async () => {
      expect(await start(['--until-caught-up']).exited).toBe(0);
    });

    const expected = expectedTimeline(events);
    const engine = openClickHouse({ kind: 'embedded', path: join(dir, 'ch') });
    let tally: TimelineTally;
    try {
      tally = await compareTimeline(engine, expected);
    } finally {
      await engine.close();
    }
    const count = (f: (r: (typeof expected)[number]) => boolean) => expected.filter(f).length;
    console.log(
      `${events.orders.length + events.payments.length + events.shipments.length} events; ${JSON.stringify(tally)}; ` +
        `oracle: paid ${count((r) => r.paid_at !== null)}, shipped ${count((r) => r.shipped_at !== null)}`,
    );
    expectExact(tally, ORDERS);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 600_000);
