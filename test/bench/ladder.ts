// The performance ladder: one pre-produced topic of order events, read by rungs that each add one kind of work,
// and by peers doing a rung's work their own way, all in the same run, each run its own process:
//   L0 a bare consumer of the same client, counting (and one on its lower-level interface, what a source built on
//   it could reach);                                       L1 + Avro decode (every record dropped after);
//   L2 + filter, map and a lookup-table enrich;            L3 + 1000 s windows per order (10k live keys, changelog);
//   L4 L2 + Kafka produce, at least once / exactly once;   L5 order-analytics into embedded ClickHouse, exactly once;
//   kafkajs: a worker as a user would write it by hand (kafkajs, the registry client's decode, eachBatch), L2's work;
//   clickhouse-kafka: ClickHouse's own Kafka engine in the same embedded engine, L5's work (at least once).
// Rounds alternate the rungs, so that the machine's noise spreads over all of them. A rung may carry settings for
// its process, `L2+MALLOC_ARENA_MAX=2+PIPELINES_MEMORY_BUDGET=256Mi`: a variant measured beside the plain rung.
//   node test/bench/ladder.ts [orders=100000] [rounds=5] [rung,rung,...]
// Prints a Markdown table (medians with min..max) and writes every run to test/bench/results/ladder-<time>.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import {
  createTopics,
  ORDER_SCHEMAS,
  produceOrders,
  produceSnapshots,
  testTopics,
  writeFixture,
} from '../integration/harness.ts';
import { bareConsumer, bareLowLevelConsumer, workerRun } from './baseline.ts';
import { clickHouseKafkaEngine } from './ladder-clickhouse-kafka.ts';
import { handWrittenWorker } from './ladder-kafkajs.ts';
import { TOPOLOGIES } from './ladder-topologies.ts';

/** What one run measured, in its own process. */
interface Run {
  rung: string;
  /** All records read, and those after the first batch (what `ms` covers). */
  records: number;
  counted: number;
  /** The end of the first batch to the end of the last. */
  ms: number;
  /** Process start to the last record. */
  wholeMs: number;
  /** Process start to the end of the first batch. */
  startMs: number;
  /** CPU of the whole process, and between the first record and the last (ms). */
  cpuMs: number;
  runCpuMs: number;
  maxRssMb: number;
}

const RUNGS = [
  'L0',
  'L0 low-level',
  'L1',
  'L2',
  'L3',
  'L4 at least once',
  'L4 exactly once',
  'L5',
  'kafkajs',
  'clickhouse-kafka',
];

async function child(rung: string, total: number, env: Record<string, string>): Promise<Run> {
  const cpu0 = process.cpuUsage();
  let at = { first: 0, cpu: process.cpuUsage() };
  const mark = () => {
    at = { first: performance.now(), cpu: process.cpuUsage() };
  };
  const topology = (f: string) => () => workerRun(f, `ladder-${rung}`, env, total, mark);
  const peers: Record<string, () => Promise<{ records: number; ms: number }>> = {
    L0: () => bareConsumer(env.ORDERS_TOPIC!, total, mark),
    'L0 low-level': () => bareLowLevelConsumer(env.ORDERS_TOPIC!, total, mark),
    L5: topology('topologies/order-analytics.yaml'),
    kafkajs: () => handWrittenWorker(env, total, mark),
    'clickhouse-kafka': () => clickHouseKafkaEngine(env, total, mark),
  };
  const text = TOPOLOGIES[rung];
  const runner =
    peers[rung] ??
    (text && topology(writeFixture(`ladder-${rung.replace(/ /g, '-')}`, text, [...ORDER_SCHEMAS, 'Customer'])));
  if (!runner) throw new Error(`no rung '${rung}': ${RUNGS.join(', ')}`);
  const r = await runner();
  const end = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const runCpu = process.cpuUsage(at.cpu);
  return {
    rung,
    records: total,
    counted: r.records,
    ms: r.ms,
    wholeMs: end,
    startMs: at.first,
    cpuMs: (cpu.user + cpu.system) / 1000,
    runCpuMs: (runCpu.user + runCpu.system) / 1000,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
  };
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! };
};
const k = (x: number) => (x >= 10_000 ? `${(x / 1000).toFixed(1)}k` : String(Math.round(x)));
const spread = (xs: number[], f: (x: number) => string) => {
  const s = stats(xs);
  return `${f(s.median)} [${f(s.min)}..${f(s.max)}]`;
};

function table(runs: Run[]): string {
  const by = (rung: string) => runs.filter((r) => r.rung === rung);
  const rate = (r: Run) => (r.counted / r.ms) * 1000;
  const median = (rung: string, f: (r: Run) => number) => stats(by(rung).map(f)).median;
  const l0 = median('L0', rate);
  const peer = median('kafkajs', rate);
  const engine = median('clickhouse-kafka', rate);
  const rows = [...new Set(runs.map((r) => r.rung))].map((rung) => {
    const rs = by(rung);
    const perMillion = (ms: number, records: number) => (ms / 1000 / records) * 1e6;
    return [
      rung,
      spread(rs.map(rate), k),
      spread(
        rs.map((r) => (r.records / r.wholeMs) * 1000),
        k,
      ),
      spread(
        rs.map((r) => r.startMs),
        (x) => `${(x / 1000).toFixed(1)} s`,
      ),
      spread(
        rs.map((r) => perMillion(r.runCpuMs, r.counted)),
        (x) => x.toFixed(1),
      ),
      spread(
        rs.map((r) => perMillion(r.cpuMs, r.records)),
        (x) => x.toFixed(1),
      ),
      spread(
        rs.map((r) => r.maxRssMb),
        (x) => String(Math.round(x)),
      ),
      l0 ? (median(rung, rate) / l0).toFixed(2) : '',
      peer ? (median(rung, rate) / peer).toFixed(2) : '',
      engine ? (median(rung, rate) / engine).toFixed(2) : '',
    ];
  });
  const head = [
    'rung',
    'events/s, first to last',
    'events/s, whole process',
    'start to first record',
    'CPU-s per M, running',
    'CPU-s per M, whole',
    'peak RSS MB',
    '× L0',
    '× kafkajs',
    '× clickhouse-kafka',
  ];
  return [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

async function main() {
  const [, , first, ...rest] = process.argv;
  if (first === '--child') {
    const [rung, total, envJson] = rest;
    const env = JSON.parse(envJson!) as Record<string, string>;
    process.stdout.write(`${JSON.stringify(await child(rung!, Number(total), env))}\n`);
    process.exit(0);
  }
  const orders = Number(first ?? 100_000);
  const rounds = Number(rest[0] ?? 5);
  const rungs = rest[1] ? rest[1].split(',') : RUNGS;
  const topics = testTopics('ladder');
  await createTopics(topics);
  await produceSnapshots(topics);
  const total = await produceOrders(topics, orderLifecycleStream(orders, { seed: 5 }));
  const date = new Date().toISOString().slice(0, 10);
  const machine = `${cpus().length} cores, ${cpus()[0]?.model ?? '?'}, node ${process.version}`;
  console.log(`${date}; ${machine}; topic ${topics.ORDERS_TOPIC}: ${total} events (${orders} orders), 3 partitions`);
  const runs: Run[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const label of rungs) {
      const [rung, ...settings] = label.split('+');
      const variant = Object.fromEntries(
        settings.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      );
      // A fresh embedded ClickHouse per run: an empty offsets log, as a new worker starts.
      const dir = mkdtempSync(join(tmpdir(), 'ladder-ch-'));
      const env = { ...topics, TOTALS_TOPIC: `${topics.ORDERS_TOPIC}.totals`, PIPELINES_CLICKHOUSE_PATH: dir };
      const p = spawnSync(process.execPath, [process.argv[1]!, '--child', rung!, String(total), JSON.stringify(env)], {
        encoding: 'utf8',
        env: { ...process.env, ...variant, ...env },
      });
      rmSync(dir, { recursive: true, force: true });
      const line = p.stdout.trim().split('\n').pop() ?? '';
      if (p.status !== 0 || !line.startsWith('{')) throw new Error(`${label} failed: ${p.stderr}${p.stdout}`);
      const r = { ...(JSON.parse(line) as Run), rung: label };
      runs.push(r);
      console.log(
        `round ${round + 1} ${label.padEnd(17)} ${k((r.counted / r.ms) * 1000).padStart(7)} events/s first to last, ` +
          `${k((r.records / r.wholeMs) * 1000)} whole; start ${Math.round(r.startMs)} ms; RSS ${Math.round(r.maxRssMb)} MB`,
      );
    }
  }
  const out = join('test', 'bench', 'results');
  mkdirSync(out, { recursive: true });
  // One file per run, to the second: a run must not replace another of the same day (or minute).
  const json = join(out, `ladder-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.json`);
  writeFileSync(json, `${JSON.stringify({ date, machine, orders, total, rungs, runs }, null, 1)}\n`);
  console.log(`every run: ${json}`);
  console.log(`\n${table(runs)}`);
}

await main();
