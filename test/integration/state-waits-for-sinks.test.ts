// The state changelog claims no more than every sink has made durable. A restore skips, for every sink, the
// records the restored state covers; so while a ClickHouse sink holds a partition's rows (it replays a recorded
// range whole before writing it), the state of those records must wait too. Set up on the real stack: the
// offsets log says a flush of offsets 0-2999 was recorded and never written (a crash), the topic holds only
// 1,000 of them, so the first worker holds all it reads; it is killed, the rest arrive, a second worker runs to
// the end. Every event must be in the table once. (Before the fix, the first worker's changelog claimed 0-999,
// the second skipped them, and the table came out 1,000 short; the read-models kill test found it.)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import {
  createTopics,
  freePort,
  ORDER_SCHEMAS,
  ORDER_VALUE,
  produceOrders,
  recordsIn,
  restoredEntries,
  spawnWorker,
  stopWorkers,
  testTopics,
  waitForLog,
  writeFixture,
} from './harness.ts';

jest.setTimeout(240_000);
afterEach(stopWorkers);

const TOPOLOGY = `apiVersion: pipelines/v1
kind: Topology
metadata: { name: held-state }
spec:
  source:
    topic: \${ORDERS_TOPIC}
    group: \${GROUP}
    value: ${ORDER_VALUE}
  steps:
    - id: once
      dedupe: { key: event.eventId, horizon: 24h }
    - id: rows
      map: { event_id: event.eventId, order_id: event.data.orderId }
  sinks:
    - clickhouse:
        table: held_events
        columns: { event_id: String, order_id: String }
        engine: { type: MergeTree, orderBy: [event_id] }
`;

test('a ClickHouse sink holding a replay keeps the state of those records from the changelog', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pipelines-held-state-'));
  try {
    const topics = testTopics('held-state');
    await createTopics(topics, 1);
    const events = [...orderLifecycleStream(1500, { seed: 9 })].slice(0, 4000);
    expect(events.length).toBe(4000);
    const file = writeFixture('held-state', TOPOLOGY, ORDER_SCHEMAS);
    const env = { ...topics, GROUP: `held-${Date.now()}`, PIPELINES_CLICKHOUSE_PATH: dir };
    const cli = (...args: string[]) => {
      const r = spawnSync(process.execPath, ['pipelines/cli/main.ts', ...args], {
        env: { ...process.env, ...env },
        encoding: 'utf8',
      });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      return r.stdout;
    };
    // The tables, then a recorded flush of offsets 0-2999 whose insert never happened.
    cli('clickhouse', 'apply', file);
    cli(
      'clickhouse',
      'query',
      `INSERT INTO _pipelines_offsets (topology, sink, topic, partition, first_offset, last_offset)
       VALUES ('held-state', 'clickhouse:held_events', '${topics.ORDERS_TOPIC}', 0, 0, 2999)`,
    );
    await produceOrders(topics, events.slice(0, 1000));

    const port = await freePort();
    const first = spawnWorker(file, env, ['--metrics', `127.0.0.1:${port}`], 'held-state-1');
    await waitForLog(first, 'replaying a range the sink may hold');
    const deadline = Date.now() + 60_000;
    while ((await recordsIn(port)) < 1000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await recordsIn(port)).toBe(1000);
    await new Promise((r) => setTimeout(r, 3000)); // a few flush cycles (one a second) with the rows held
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe(null);

    await produceOrders(topics, events.slice(1000));
    const second = spawnWorker(file, env, ['--until-caught-up'], 'held-state-2');
    expect(await second.exited).toBe(0);
    // The first worker wrote no state: its records were never durable in ClickHouse.
    expect(restoredEntries(second)).toEqual([0]);
    const rows = cli(
      'clickhouse',
      'query',
      'SELECT count() AS n, uniqExact(event_id) AS ids FROM held_events',
      '--json',
    );
    expect(JSON.parse(rows)).toEqual({ n: 4000, ids: 4000 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
