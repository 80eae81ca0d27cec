// Worker throughput on the real stack, beside a bare consumer of the same client that only counts, on the same
// pre-produced topic, in the same run. Two workloads:
//   forward: decode → filter/map → encode → produce (topologies/order-forward.yaml);
//   windows: decode → aggregate per order in 1000 s tumbling windows (10k live keys: one order starts every
//            100 ms) → emit on close to a Kafka topic, with the state changelog written every batch.
// Each run is its own process (peak RSS is per process), alternating bare and worker, fresh consumer groups.
//   node test/bench/worker.bench.ts [orders=100000] [rounds=3] [forward|windows]
// Prints per-run rates and peak RSS, then medians with min..max and the ratio worker/bare.
import { spawnSync } from 'node:child_process';
import { orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import {
  createTopics,
  ORDER_SCHEMAS,
  ORDER_VALUE,
  produceOrders,
  testTopics,
  writeFixture,
} from '../integration/harness.ts';
import { bareConsumer, workerRun } from './baseline.ts';

interface RunResult {
  records: number;
  ms: number;
  rate: number;
  maxRssMb: number;
}

const WINDOWS = `apiVersion: pipelines/v1
kind: Topology
metadata: { name: bench-windows }
spec:
  source:
    topic: \${ORDERS_TOPIC}
    group: bench-windows
    value: ${ORDER_VALUE}
    eventTime: event.timestamp
    maxOutOfOrderness: 5s
  steps:
    - id: per-order
      aggregate:
        window: { tumbling: 1000s, allowedLateness: 1m }
        groupBy: { orderId: event.data.orderId }
        measures: { events: count(), first: min(event.timestamp), last: max(event.timestamp) }
  sinks:
    - kafka: { topic: "\${TOTALS_TOPIC}", key: orderId, value: { format: json } }
  errors: { deadLetter: "\${DLQ_TOPIC}" }
`;

/** The topology file of a workload (the windows one is written beside copies of the schemas). */
function topologyFile(workload: string): string {
  return workload === 'forward'
    ? 'topologies/order-forward.yaml'
    : writeFixture('bench-windows', WINDOWS, ORDER_SCHEMAS);
}

async function child(mode: 'bare' | 'worker', topic: string, total: number, env: Record<string, string>, file: string) {
  if (mode === 'bare') return bareConsumer(topic, total);
  return workerRun(file, 'bench-worker', env, total);
}

async function main() {
  const [, , first, ...rest] = process.argv;
  if (first === '--child') {
    const [mode, topic, total, envJson, file] = rest;
    const r = await child(mode as 'bare' | 'worker', topic!, Number(total), JSON.parse(envJson!), file!);
    const out: RunResult = { ...r, rate: (r.records / r.ms) * 1000, maxRssMb: process.resourceUsage().maxRSS / 1024 };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    process.exit(0);
  }
  const orders = Number(first ?? 100_000);
  const rounds = Number(rest[0] ?? 3);
  const file = topologyFile(rest[1] ?? 'forward');
  const topics = testTopics('bench');
  const env = { ...topics, TOTALS_TOPIC: `${topics.ORDERS_TOPIC}.totals` };
  await createTopics(topics);
  const total = await produceOrders(topics, orderLifecycleStream(orders, { seed: 5 }));
  console.log(`topic ${topics.ORDERS_TOPIC}: ${total} events (${orders} order lifecycles), 3 partitions; ${file}`);
  const results: Record<'bare' | 'worker', RunResult[]> = { bare: [], worker: [] };
  for (let i = 0; i < rounds; i++) {
    for (const mode of ['bare', 'worker'] as const) {
      const p = spawnSync(
        process.execPath,
        [process.argv[1]!, '--child', mode, topics.ORDERS_TOPIC, String(total), JSON.stringify(env), file],
        {
          encoding: 'utf8',
          env: process.env,
        },
      );
      const line = p.stdout.trim().split('\n').pop() ?? '';
      if (p.status !== 0 || !line.startsWith('{')) throw new Error(`${mode} run failed: ${p.stderr}`);
      const r = JSON.parse(line) as RunResult;
      results[mode].push(r);
      console.log(
        `${mode.padEnd(6)} ${Math.round(r.rate).toLocaleString('en')} events/s  (${r.records} in ${Math.round(r.ms)} ms)  peak RSS ${Math.round(r.maxRssMb)} MB`,
      );
    }
  }
  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! };
  };
  const fmt = (x: { median: number; min: number; max: number }, unit: string) =>
    `${Math.round(x.median).toLocaleString('en')} ${unit} [${Math.round(x.min).toLocaleString('en')}..${Math.round(x.max).toLocaleString('en')}]`;
  const bare = stats(results.bare.map((r) => r.rate));
  const worker = stats(results.worker.map((r) => r.rate));
  console.log(
    `\nbare consumer: ${fmt(bare, 'events/s')}, peak RSS ${fmt(stats(results.bare.map((r) => r.maxRssMb)), 'MB')}`,
  );
  console.log(
    `worker:        ${fmt(worker, 'events/s')}, peak RSS ${fmt(stats(results.worker.map((r) => r.maxRssMb)), 'MB')}`,
  );
  console.log(`ratio worker/bare (medians): ${(worker.median / bare.median).toFixed(2)}`);
}

await main();
