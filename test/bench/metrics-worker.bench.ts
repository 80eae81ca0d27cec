// What the metrics cost a real worker at full load: `pipelines run` as launched (launchWorker) on the same
// pre-produced topic, with metrics on (registry, every event callback, /metrics served and scraped every 5 s as
// Prometheus would) and off (`--no-metrics`: no registry, no callbacks, no server), in alternating runs, each
// its own process and a fresh consumer group. Throughput counts from the first batch to the last record.
//   node test/bench/metrics-worker.bench.ts [orders=300000] [rounds=5] [topology=topologies/order-forward.yaml]
// Prints every run, then per mode the median with min..max, and the cost as 1 - median(on)/median(off) with
// the paired per-round costs (the requirement: at most 3% of throughput).
import { spawnSync } from 'node:child_process';
import { orderPlacedStream } from '../../pipelines/loadgen/orders.ts';
import { launchWorker } from '../../pipelines/runtime/launch.ts';
import { createTopics, produceOrders, testTopics } from '../integration/harness.ts';

type Mode = 'on' | 'off';
interface RunResult {
  records: number;
  ms: number;
  rate: number;
  /** Process CPU (user + system, every thread) per record over the same span, in µs. */
  cpuUs: number;
}

const quiet = { info() {}, warn() {}, error: (o: object, m: string) => console.error(m, o) };

async function child(mode: Mode, file: string, total: number, env: Record<string, string>): Promise<RunResult> {
  Object.assign(process.env, env);
  let seen = 0;
  let first = 0;
  let cpu0 = process.cpuUsage();
  let done!: (r: RunResult) => void;
  const finished = new Promise<RunResult>((r) => {
    done = r;
  });
  const running = await launchWorker({
    file,
    flags: { group: `bench-metrics-${mode}-${Date.now()}` },
    log: quiet,
    observe: mode === 'on' ? { host: '127.0.0.1', port: 0 } : false,
    onBatch: (e) => {
      if (seen === 0) {
        first = performance.now();
        cpu0 = process.cpuUsage();
      }
      seen += e.records;
      if (seen >= total) {
        const ms = performance.now() - first;
        const c = process.cpuUsage(cpu0);
        done({ records: seen, ms, rate: (seen / ms) * 1000, cpuUs: (c.user + c.system) / seen });
      }
    },
  });
  // As Prometheus does: a scrape every 5 s.
  const scrape =
    mode === 'on' && running.server
      ? setInterval(() => void fetch(`${running.server!.url}/metrics`).then((r) => r.text()), 5000)
      : undefined;
  const r = await finished;
  clearInterval(scrape);
  await running.stop();
  return r;
}

async function main() {
  const [, , first, ...rest] = process.argv;
  if (first === '--child') {
    const [mode, file, total, envJson] = rest;
    const r = await child(mode as Mode, file!, Number(total), JSON.parse(envJson!));
    process.stdout.write(`${JSON.stringify(r)}\n`);
    process.exit(0);
  }
  const orders = Number(first ?? 300_000);
  const rounds = Number(rest[0] ?? 5);
  const file = rest[1] ?? 'topologies/order-forward.yaml';
  const topics = testTopics('bench-metrics');
  const env = { ...topics, TOTALS_TOPIC: `${topics.ORDERS_TOPIC}.totals` };
  await createTopics(topics);
  const total = await produceOrders(topics, orderPlacedStream(orders, { seed: 9 }));
  console.log(`${file} on ${topics.ORDERS_TOPIC}: ${total} OrderPlaced events, 3 partitions`);
  const results: Record<Mode, RunResult[]> = { on: [], off: [] };
  for (let i = 0; i < rounds; i++) {
    // Alternate which mode goes first, so that drift (page cache, broker) hits both alike.
    for (const mode of (i % 2 === 0 ? ['off', 'on'] : ['on', 'off']) as Mode[]) {
      const p = spawnSync(
        process.execPath,
        [process.argv[1]!, '--child', mode, file, String(total), JSON.stringify(env)],
        { encoding: 'utf8', env: process.env },
      );
      const line = p.stdout.trim().split('\n').pop() ?? '';
      if (p.status !== 0 || !line.startsWith('{')) throw new Error(`${mode} run failed: ${p.stderr}`);
      const r = JSON.parse(line) as RunResult;
      results[mode].push(r);
      console.log(
        `round ${i + 1} metrics ${mode.padEnd(3)} ${Math.round(r.rate).toLocaleString('en')} events/s (${r.records} in ${Math.round(r.ms)} ms), CPU ${r.cpuUs.toFixed(2)} µs/record`,
      );
    }
  }
  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! };
  };
  const rate = (x: { median: number; min: number; max: number }) =>
    `${Math.round(x.median).toLocaleString('en')} events/s [${Math.round(x.min).toLocaleString('en')}..${Math.round(x.max).toLocaleString('en')}]`;
  const on = stats(results.on.map((r) => r.rate));
  const off = stats(results.off.map((r) => r.rate));
  const paired = results.on.map((r, i) => (1 - r.rate / results.off[i]!.rate) * 100);
  const p = stats(paired);
  const cpuOn = stats(results.on.map((r) => r.cpuUs));
  const cpuOff = stats(results.off.map((r) => r.cpuUs));
  const us = (x: { median: number; min: number; max: number }) =>
    `${x.median.toFixed(2)} µs/record [${x.min.toFixed(2)}..${x.max.toFixed(2)}]`;
  console.log(
    `\nCPU per record: off ${us(cpuOff)}, on ${us(cpuOn)}: +${((cpuOn.median / cpuOff.median - 1) * 100).toFixed(1)}%`,
  );
  console.log(`metrics off: ${rate(off)}`);
  console.log(`metrics on:  ${rate(on)}`);
  console.log(
    `cost: ${((1 - on.median / off.median) * 100).toFixed(1)}% of throughput (medians); per round ${p.median.toFixed(1)}% [${p.min.toFixed(1)}..${p.max.toFixed(1)}]`,
  );
}

await main();
