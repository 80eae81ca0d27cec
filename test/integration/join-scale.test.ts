// order-timeline as 1 to 3 workers and back while the three topics are written: real workers in one process (each
// its own consumer-group members, one per stage, with their own Kafka clients) over ONE embedded ClickHouse lent
// to all, as the clients of one server. Members join and leave at fixed moments; the joins' state moves with
// their partitions through the changelogs. Every order has one row, equal to the oracle's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { caughtUp, committedOffsets, drainedTo, endOffsets } from '../../pipelines/kafka/offsets.ts';
import { expectedTimeline, produceTimeline, timelineEvents } from '../../pipelines/loadgen/timeline.ts';
import { launchWorker, type RunningWorker } from '../../pipelines/runtime/launch.ts';
import { loadStages } from '../../pipelines/runtime/load.ts';
import { openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import { lendClickHouse } from '../../pipelines/sinks/clickhouse/spec.ts';
import { stack } from './harness.ts';
import { waitFor } from './scale-out.ts';
import { closeWindows, compareTimeline, expectExact, timelineTopics } from './timeline.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FILE = 'topologies/order-timeline.yaml';
const ORDERS = Number(process.env.JOIN_ORDERS ?? 20_000);
const trace = (m: string) => process.stderr.write(`[join-scale ${new Date().toISOString()}] ${m}\n`);

test('order-timeline from 1 to 3 workers and back during the stream: one exact row per order', async () => {
  const topics = await timelineTopics('join-scale');
  const { conn, codec } = stack();
  const dir = mkdtempSync(join(tmpdir(), 'join-scale-'));
  const engine = openClickHouse({ kind: 'embedded', path: join(dir, 'ch') });
  const group = `scale-timeline-${Date.now()}`;
  const env = { ...process.env, ...topics };
  const stages = await loadStages(FILE, { env }, group);
  const members: RunningWorker[] = [];
  const failures: string[] = [];
  const start = async () => {
    const w = await launchWorker({
      file: FILE,
      env,
      flags: { group },
      log: {
        info() {},
        warn() {},
        error(fields, msg) {
          if (msg !== 'worker failed: stopping') failures.push(`${msg} ${JSON.stringify(fields).slice(0, 300)}`);
        },
      },
      observe: false,
      lent: new Map([lendClickHouse({ ...engine, close: async () => {} })]),
      tuning: { consumer: { 'session.timeout.ms': 6000 } },
    });
    w.finished.catch((err: Error) => failures.push(err.message));
    members.push(w);
  };
  const stop = async (i: number) => {
    const [w] = members.splice(i, 1);
    await w!.stop();
  };
  /** Each stage committed what its topic holds, in stage order: an internal topic is whole once its writers are. */
  const settled = async () => {
    for (const s of stages) {
      const topic = s.plan.topology.spec.source.topic;
      // The first stage's group is the one given (--group); the others are named from it.
      const g = s.id === 'source' ? group : s.plan.topology.spec.source.group;
      const ends = await endOffsets(conn.kafka, topic);
      trace(`waiting for ${s.id}`);
      await waitFor(`stage ${s.id} to commit ${topic}`, async () => {
        if (failures.length > 0) return true; // nothing will move: said below
        const at = await committedOffsets(conn.kafka, g, topic);
        return caughtUp(at, ends) || drainedTo(conn.kafka, topic, at, ends);
      });
      if (failures.length > 0) throw new Error(`a worker failed: ${failures.join('; ')}`);
    }
  };
  const t0 = Date.UTC(2026, 6, 1);
  const events = timelineEvents(ORDERS, { seed: 33, start: t0, span: 10 * 60_000 });
  const written = produceTimeline(conn.kafka, codec, topics, events, 3000);
  written.catch(() => {});
  const sizes: number[] = [];
  try {
    await start();
    // 1 → 2 → 3 → 2 → 1, a change every few seconds of the stream's ~18 s.
    for (const change of [start, start, () => stop(0), () => stop(0)]) {
      await sleep(3500);
      await change();
      sizes.push(members.length);
      trace(`members ${members.length}`);
    }
    await written;
    trace('written');
    await closeWindows(topics, t0, settled);
    trace('closed');
    for (let i = members.length - 1; i >= 0; i--) await stop(i);
    const expected = expectedTimeline(events);
    const tally = await compareTimeline(engine, expected);
    console.log(
      `members after each change ${sizes.join(' → ')}; ${JSON.stringify(tally)}; failures ${failures.length}`,
    );
    expect(failures).toEqual([]);
    expect(sizes).toEqual([2, 3, 2, 1]);
    expectExact(tally, ORDERS);
  } finally {
    for (const w of members.splice(0)) await w.stop().catch(() => {});
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, 600_000);
