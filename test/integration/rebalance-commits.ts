// The commit stall of issue 12, as an operator met it: a 6-partition topic with a backlog, a first worker, a second
// and a third joining, the second killed -9 while the group rebalances; every partition's committed offset must
// then reach the topic's end within a bound, with no new record to move it. Used by rebalance-commits.test.ts and
// on demand by test/faults/rebalance-commits.ts (with a bigger backlog).
import { committedOffsets, endOffsets } from '../../pipelines/kafka/offsets.ts';
import { orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import {
  createTopics,
  produceOrders,
  produceSnapshots,
  spawnWorker,
  stack,
  stopWorkers,
  testTopics,
  type WorkerProcess,
  waitForLog,
} from './harness.ts';

const PARTITIONS = 6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the scenario; resolves to the partitions whose commits stayed behind their end (none when it passes). */
export async function rebalanceCommits(o: { orders: number; boundMs: number; out: (line: string) => void }) {
  const topics = testTopics('rebalance-commits');
  const group = `rebalance-commits-${Date.now()}`;
  await createTopics(topics, PARTITIONS);
  await produceSnapshots(topics);
  const events = await produceOrders(topics, orderLifecycleStream(o.orders, { seed: 11 }));
  const conn = stack().conn.kafka;
  const ends = await endOffsets(conn, topics.ORDERS_TOPIC);
  o.out(`produced ${events} events to ${PARTITIONS} partitions of ${topics.ORDERS_TOPIC}`);
  const env = { ...topics, TOTALS_TOPIC: `${topics.ORDERS_TOPIC}.totals` };
  const start = (name: string): WorkerProcess =>
    spawnWorker('topologies/order-forward.yaml', env, ['--group', group], `rebalance-commits-${name}`);
  const started = Date.now();
  const behind = async (label: string) => {
    const committed = await committedOffsets(conn, group, topics.ORDERS_TOPIC).catch(() => new Map<number, bigint>());
    const cells = [...ends].map(([p, end]) => `${p}:${committed.get(p) ?? '-'}/${end}`);
    o.out(`${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s  ${label.padEnd(22)} ${cells.join('  ')}`);
    return [...ends].filter(([p, end]) => (committed.get(p) ?? -1n) < end).map(([p]) => p);
  };
  try {
    // The joins and the kill land while the backlog is being read: each one moves partitions mid-flight, and the
    // kill leaves the group waiting for a member that is gone (its commits are refused meanwhile).
    const a = start('a');
    await waitForLog(a, 'partitions assigned');
    await sleep(1000);
    await behind('a alone');
    const b = start('b');
    await waitForLog(b, 'partitions assigned');
    await behind('b joined');
    const c = start('c');
    await waitForLog(c, 'partitions assigned');
    await behind('c joined');
    await sleep(1000);
    b.child.kill('SIGKILL');
    await behind('b killed -9');
    const deadline = Date.now() + o.boundMs;
    let left = await behind('waiting');
    while (left.length > 0 && Date.now() < deadline) {
      await sleep(5000);
      left = await behind(`behind: ${left.join(',')}`);
    }
    for (const w of [a, c]) w.child.kill('SIGTERM');
    await Promise.all([a.exited, c.exited]);
    return left;
  } finally {
    await stopWorkers();
  }
}
