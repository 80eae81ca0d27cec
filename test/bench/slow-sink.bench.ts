// Memory while the sink is slow, on the real stack: the broker throttles the worker's producer with a client
// quota (producer_byte_rate, set with Kafka's own ConfigCommand for the worker's client.id) while a large backlog
// waits on the input. The worker must pause its consumer when its buffers are full and keep its memory flat; when
// the quota is removed it must resume and deliver everything. Beside it, in the same run, the same backlog with no
// quota: peak RSS and time of both.
//   node test/bench/slow-sink.bench.ts [orders=250000] [slowSeconds=20] [bytesPerSecond=20000]
import { spawnSync } from 'node:child_process';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { clientConfig, connectionsFrom } from '../../pipelines/kafka/connection.ts';
import { orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import { launchWorker } from '../../pipelines/runtime/launch.ts';
import { clientQuota } from '../faults/inject.ts';
import { createTopics, produceOrders, testTopics } from '../integration/harness.ts';

const quiet = { info() {}, warn() {}, error: (o: object, m: string) => console.error(m, o) };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (b: number) => Math.round(b / 1048576);

async function topicSize(topic: string): Promise<number> {
  const kafka = new KafkaJS.Kafka({
    ...clientConfig(connectionsFrom(process.env).kafka),
    kafkaJS: { logLevel: KafkaJS.logLevel.ERROR },
  } as never);
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  return offsets.reduce((n, p) => n + Number(p.high), 0);
}

async function child(mode: 'slow' | 'fast', env: Record<string, string>, total: number, slowSeconds: number) {
  Object.assign(process.env, env);
  let read = 0;
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 100);
  const started = performance.now();
  const running = await launchWorker({
    file: 'topologies/order-forward.yaml',
    flags: { group: `bench-${mode}-${Date.now()}` },
    log: quiet,
    observe: false,
    onBatch: (e) => {
      read += e.records;
    },
  });
  const samples: string[] = [];
  let pausedSeen = false;
  let peakWhileSlow = 0;
  if (mode === 'slow') {
    for (let s = 1; s <= slowSeconds; s++) {
      await sleep(1000);
      const m = process.memoryUsage();
      pausedSeen ||= running.worker.paused;
      samples.push(
        `${String(s).padStart(2)}s rss ${mb(m.rss)} MB, heap ${mb(m.heapUsed)} MB, read ${read}${running.worker.paused ? ', paused' : ''}`,
      );
    }
    peakWhileSlow = peak;
    clientQuota(env.PIPELINES_CLIENT_ID!, undefined);
  }
  while (read < total) await sleep(100);
  await running.stop();
  clearInterval(sampler);
  return {
    read,
    ms: performance.now() - started,
    peakRssMb: mb(peak),
    peakWhileSlowMb: mb(peakWhileSlow),
    pausedSeen,
    samples,
  };
}

async function main() {
  const [, , first, ...rest] = process.argv;
  if (first === '--child') {
    const [mode, envJson, total, slow] = rest;
    const r = await child(mode as 'slow' | 'fast', JSON.parse(envJson!), Number(total), Number(slow));
    process.stdout.write(`${JSON.stringify(r)}\n`);
    process.exit(0);
  }
  const orders = Number(first ?? 250_000);
  const slowSeconds = Number(rest[0] ?? 20);
  const rate = Number(rest[1] ?? 20_000);
  const topics = testTopics('slowsink');
  await createTopics(topics);
  const total = await produceOrders(topics, orderLifecycleStream(orders, { seed: 9 }));
  console.log(
    `topic ${topics.ORDERS_TOPIC}: ${total} events (${orders} orders, as many totals to write), 3 partitions`,
  );
  for (const mode of ['fast', 'slow'] as const) {
    const out = `${topics.ORDERS_TOPIC}.totals-${mode}`;
    const clientId = `bench-${mode}-${Date.now()}`;
    if (mode === 'slow') clientQuota(clientId, rate);
    const env = { ...topics, TOTALS_TOPIC: out, PIPELINES_CLIENT_ID: clientId };
    const p = spawnSync(
      process.execPath,
      [process.argv[1]!, '--child', mode, JSON.stringify(env), String(total), String(slowSeconds)],
      { encoding: 'utf8', env: process.env },
    );
    const line = p.stdout.trim().split('\n').pop() ?? '';
    if (p.status !== 0 || !line.startsWith('{')) throw new Error(`${mode} run failed: ${p.stderr}`);
    const r = JSON.parse(line);
    for (const s of r.samples) console.log(`  ${s}`);
    const delivered = await topicSize(out);
    console.log(
      `${mode}: read ${r.read} in ${Math.round(r.ms)} ms, delivered ${delivered} of ${orders}, peak RSS ${r.peakRssMb} MB` +
        (mode === 'slow'
          ? ` (${r.peakWhileSlowMb} MB while throttled to ${rate} B/s; consumer paused: ${r.pausedSeen})`
          : ''),
    );
  }
}

await main();
