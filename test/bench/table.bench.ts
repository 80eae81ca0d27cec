// A lookup table of 1M rows on the real stack: Customer snapshots on a compacted topic (Avro, registry), loaded
// by the worker's TableLoader into a TableStore in a fresh process, as a worker does at start. Reports the load
// time (start to caught up), heap and RSS before and after, and the cost of a lookup (random keys, hits).
//   node test/bench/table.bench.ts [rows=1000000] [rounds=3]
import { spawnSync } from 'node:child_process';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { AvroCodec, RegistryClient } from '../../pipelines/codec/index.ts';
import { clientConfig, connectionsFrom } from '../../pipelines/kafka/connection.ts';
import { applyTopics } from '../../pipelines/kafka/topics.ts';
import { customerId, customerSnapshots, readSchema } from '../../pipelines/loadgen/orders.ts';
import { produce, snapshotEncoder } from '../../pipelines/loadgen/produce.ts';
import { TableStore } from '../../pipelines/runtime/plan.ts';
import { TableLoader } from '../../pipelines/state/tables.ts';

interface Result {
  rows: number;
  loadMs: number;
  heapMb: number;
  rssMb: number;
  baseRssMb: number;
  lookupNs: number;
}

const mb = (n: number) => n / 1024 / 1024;
const quiet = { info() {}, warn() {}, error: (o: object, m: string) => console.error(m, o) };

async function child(topic: string, rows: number): Promise<Result> {
  const conn = connectionsFrom(process.env);
  const kafka = new KafkaJS.Kafka({
    ...clientConfig(conn.kafka),
    kafkaJS: { logLevel: KafkaJS.logLevel.ERROR },
  } as never);
  const decoder = new AvroCodec({
    registry: new RegistryClient(conn.registry),
    readers: [readSchema('Customer')],
    unknownRecord: 'writer',
  });
  const store = new TableStore(new Map([['customers', 'customerId']]));
  global.gc?.();
  const baseHeap = process.memoryUsage().heapUsed;
  const baseRss = process.memoryUsage().rss;
  const loader = new TableLoader({
    kafka,
    connection: clientConfig(conn.kafka),
    table: 'customers',
    topic,
    store,
    decoder,
    group: `bench-table-${process.pid}-${Date.now()}`,
    log: quiet,
  });
  const started = performance.now();
  await loader.start();
  await loader.caughtUp;
  const loadMs = performance.now() - started;
  await loader.stop();
  global.gc?.();
  const heapMb = mb(process.memoryUsage().heapUsed - baseHeap);
  const rssMb = mb(process.memoryUsage().rss);
  if (store.size('customers') !== rows) throw new Error(`loaded ${store.size('customers')} rows, expected ${rows}`);
  // Lookups as the enrich step does them: string keys, known to exist, in random order.
  const keys = Array.from({ length: 200_000 }, () => customerId(Math.floor(Math.random() * rows)));
  const view = store.view('customers');
  let hits = 0;
  const t0 = performance.now();
  for (let r = 0; r < 5; r++) for (const k of keys) if (view.get(k) !== undefined) hits++;
  const lookupNs = ((performance.now() - t0) * 1e6) / (keys.length * 5);
  if (hits !== keys.length * 5) throw new Error(`lookups missed: ${keys.length * 5 - hits}`);
  return { rows, loadMs, heapMb, rssMb, baseRssMb: mb(baseRss), lookupNs };
}

async function main() {
  const [, , first, ...rest] = process.argv;
  if (first === '--child') {
    const r = await child(rest[0]!, Number(rest[1]));
    process.stdout.write(`${JSON.stringify(r)}\n`);
    process.exit(0);
  }
  const rows = Number(first ?? 1_000_000);
  const rounds = Number(rest[0] ?? 3);
  const conn = connectionsFrom(process.env);
  const topic = `bench.table.${Date.now()}.customers`;
  await applyTopics(conn.kafka, [{ name: topic, partitions: 3, replicas: 1, cleanup: 'compact' }], { maxReplicas: 1 });
  const encode = await snapshotEncoder(
    new AvroCodec({ registry: new RegistryClient(conn.registry) }),
    topic,
    'Customer',
  );
  const customers = customerSnapshots(rows, 7);
  const ids = new Set(customers.map((c) => c.customerId));
  if (ids.size !== rows) throw new Error(`customer ids are not unique: ${ids.size} of ${rows}`);
  const t0 = performance.now();
  await produce(
    conn.kafka,
    topic,
    customers.map((c) => ({ key: c.customerId, value: encode(c) })),
  );
  console.log(`topic ${topic}: ${rows} Customer rows produced in ${Math.round(performance.now() - t0)} ms`);
  const results: Result[] = [];
  for (let i = 0; i < rounds; i++) {
    const p = spawnSync(process.execPath, ['--expose-gc', process.argv[1]!, '--child', topic, String(rows)], {
      encoding: 'utf8',
      env: process.env,
    });
    const line = p.stdout.trim().split('\n').pop() ?? '';
    if (p.status !== 0 || !line.startsWith('{')) throw new Error(`run failed: ${p.stderr}`);
    const r = JSON.parse(line) as Result;
    results.push(r);
    console.log(
      `load ${Math.round(r.loadMs)} ms (${Math.round((r.rows / r.loadMs) * 1000).toLocaleString('en')} rows/s)  ` +
        `heap +${Math.round(r.heapMb)} MB  RSS ${Math.round(r.baseRssMb)} -> ${Math.round(r.rssMb)} MB  ` +
        `lookup ${r.lookupNs.toFixed(0)} ns`,
    );
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const span = (xs: number[], d = 0) => `${Math.min(...xs).toFixed(d)}..${Math.max(...xs).toFixed(d)}`;
  const f = (k: keyof Result, d = 0) =>
    `${med(results.map((r) => r[k])).toFixed(d)} [${span(
      results.map((r) => r[k]),
      d,
    )}]`;
  console.log(
    `\n${rows} rows: load ${f('loadMs')} ms, heap +${f('heapMb')} MB (${(
      (med(results.map((r) => r.heapMb)) * 1024 * 1024) / rows
    ).toFixed(0)} bytes/row), RSS ${f('rssMb')} MB, lookup ${f('lookupNs')} ns`,
  );
}

await main();
