// Throughput of 1, 2 and 3 worker processes of order-enrichment (decode, enrich from two lookup tables, encode,
// exactly-once Kafka transactions) over one backlog on a 6-partition topic: from the first worker's start to the
// group committed to the end, start-up included. Rounds alternate the worker counts, so drift hits each alike.
//   node test/bench/scale-out.bench.ts [orders] [rounds]
// Needs the local stack. A ClickHouse topology cannot be measured this way here: each process would need its own
// embedded engine (refused: CH_EMBEDDED_SHARED), and the stack's ClickHouse server is too old for the sink.
import { caughtUp, committedOffsets, endOffsets } from '../../pipelines/kafka/offsets.ts';
import { orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import {
  createTopics,
  produceOrders,
  produceSnapshots,
  spawnWorker,
  stack,
  testTopics,
  waitForLog,
} from '../integration/harness.ts';

const ORDERS = Number(process.argv[2] ?? 100_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const COUNTS = [1, 2, 3];

const topics = testTopics('bench-scale');
await createTopics(topics, 6);
await produceSnapshots(topics);
const events = await produceOrders(topics, orderLifecycleStream(ORDERS, { seed: 5 }));
const kafka = stack().conn.kafka;
const ends = await endOffsets(kafka, topics.ORDERS_TOPIC);
console.log(`${events} events (${ORDERS} orders) on 6 partitions of ${topics.ORDERS_TOPIC}; node ${process.version}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rates = new Map<number, number[]>(COUNTS.map((n) => [n, []]));

for (let round = 0; round < ROUNDS; round++) {
  for (const n of round % 2 === 0 ? COUNTS : [...COUNTS].reverse()) {
    const group = `bench-scale-${n}-${round}-${Date.now()}`;
    const env = { ...topics, ENRICHED_TOPIC: `${topics.ENRICHED_TOPIC}.${n}.${round}` };
    const started = performance.now();
    const workers = Array.from({ length: n }, (_, i) =>
      spawnWorker('topologies/order-enrichment.yaml', env, ['--group', group], `bench-scale-${n}-${i}`),
    );
    await Promise.all(workers.map((w) => waitForLog(w, 'partitions assigned', 120_000)));
    while (!caughtUp(await committedOffsets(kafka, group, topics.ORDERS_TOPIC).catch(() => new Map()), ends))
      await sleep(100);
    const seconds = (performance.now() - started) / 1000;
    for (const w of workers) w.child.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.exited));
    rates.get(n)!.push(events / seconds);
    console.log(
      `round ${round + 1}, ${n} worker(s): ${seconds.toFixed(1)} s, ${Math.round(events / seconds)} events/s`,
    );
  }
}

const k = (x: number) => `${(x / 1000).toFixed(1)}k`;
const one = median(rates.get(1)!);
for (const n of COUNTS) {
  const xs = rates.get(n)!;
  console.log(
    `${n} worker(s): ${k(median(xs))} events/s [${k(Math.min(...xs))}..${k(Math.max(...xs))}], ` +
      `${(median(xs) / one).toFixed(2)}x one worker`,
  );
}
