// Start-up to ready (issue 16, fast start): `pipelines run <topology>` as a new process, from its spawn to the first
// 200 from /readyz (partitions assigned, tables caught up, sinks reachable), polled every 10 ms. A fresh group per
// run on a topic that has records, rounds alternating the topologies; medians with min..max.
//   node test/bench/startup.ts [rounds=5] [file,file,...]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import { createTopics, freePort, produceOrders, produceSnapshots, testTopics } from '../integration/harness.ts';

const DEFAULT = [
  'topologies/order-forward.yaml',
  'topologies/order-enrichment.yaml',
  'topologies/order-analytics.yaml',
];

async function readyAfter(file: string, env: Record<string, string>): Promise<number> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'startup-ch-'));
  const started = performance.now();
  const child = spawn(
    process.execPath,
    ['pipelines/cli/main.ts', 'run', file, '--group', `startup-${Date.now()}`, '--metrics', `127.0.0.1:${port}`],
    { env: { ...process.env, ...env, PIPELINES_CLICKHOUSE_PATH: dir, PIPELINES_LOG_LEVEL: 'error' }, stdio: 'ignore' },
  );
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  try {
    for (;;) {
      if (performance.now() - started > 60_000) throw new Error(`${file}: not ready in 60 s`);
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`)
        .then((r) => r.status === 200)
        .catch(() => false);
      if (ok) return performance.now() - started;
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const [roundsArg, filesArg] = process.argv.slice(2);
  const rounds = Number(roundsArg ?? 5);
  const files = filesArg ? filesArg.split(',') : DEFAULT;
  const topics = testTopics('startup');
  await createTopics(topics);
  await produceSnapshots(topics);
  await produceOrders(topics, orderLifecycleStream(2000, { seed: 3 }));
  const env = { ...topics, TOTALS_TOPIC: `${topics.ORDERS_TOPIC}.totals` };
  console.log(`${new Date().toISOString().slice(0, 10)}; ${cpus().length} cores, ${cpus()[0]?.model ?? '?'}`);
  const times = new Map<string, number[]>(files.map((f) => [f, []]));
  for (let round = 0; round < rounds; round++) {
    for (const file of files) {
      const ms = await readyAfter(file, env);
      times.get(file)!.push(ms);
      console.log(`round ${round + 1} ${file}: ready after ${Math.round(ms)} ms`);
    }
  }
  console.log('\n| topology | spawn to /readyz 200 |\n| --- | --- |');
  for (const [file, xs] of times) {
    const s = [...xs].sort((a, b) => a - b);
    const f = (x: number) => `${(x / 1000).toFixed(2)} s`;
    console.log(`| ${file} | ${f(s[Math.floor(s.length / 2)]!)} [${f(s[0]!)}..${f(s.at(-1)!)}] |`);
  }
}

await main();
