// Rows per second into embedded ClickHouse for topologies/order-analytics.yaml run from Kafka by the real worker
// (decode, steps, exactly-once writer: offsets log + insert tokens), beside a bare insert of the very same rows
// from memory (insertRows, 50k-row chunks, no tokens) into identical tables, in the same process and run.
//   node test/bench/clickhouse-worker.bench.ts [orders=70000] [rounds=3]
// Needs the local stack (Kafka, registry). Prints per-round figures, then medians.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import { launchWorker } from '../../pipelines/runtime/launch.ts';
import { openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import { createTableSql } from '../../pipelines/sinks/clickhouse/ddl.ts';
import { topologyTables } from '../../pipelines/sinks/clickhouse/schema.ts';
import { rowEncoder } from '../../pipelines/sinks/clickhouse/table.ts';
import { insertRows } from '../../pipelines/sinks/clickhouse/writer.ts';
import { createTopics, produceOrders, produceSnapshots, testTopics } from '../integration/harness.ts';

const ORDERS = Number(process.argv[2] ?? 70_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const FILE = 'topologies/order-analytics.yaml';
const quiet = { info() {}, warn() {}, error: (o: object, m: string) => console.error(m, o) };

const topics = testTopics('bench-ch');
await createTopics(topics);
await produceSnapshots(topics);
const events = [...orderLifecycleStream(ORDERS, { seed: 5 })];
await produceOrders(topics, events);
const dir = mkdtempSync(join(tmpdir(), 'pipelines-ch-worker-bench-'));
const env = { ...process.env, ...topics, PIPELINES_CLICKHOUSE_PATH: dir };
console.log(`${events.length} events (${ORDERS} orders) on ${topics.ORDERS_TOPIC}; ${FILE}; node ${process.version}`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (x: number) => Math.round(x).toLocaleString('en');
const results: Array<{ events: number; rows: number; workerRowsPerS: number; bareRowsPerS: number }> = [];

try {
  for (let round = 0; round < ROUNDS; round++) {
    const rowsBySink = new Map<string, unknown[]>();
    let seen = 0;
    let first = 0;
    let caughtUp!: () => void;
    const done = new Promise<void>((r) => {
      caughtUp = r;
    });
    const running = await launchWorker({
      file: FILE,
      env,
      flags: { group: `bench-ch-${Date.now()}-${round}` },
      log: quiet,
      observe: false,
      onBatch: (e) => {
        if (seen === 0) first = performance.now();
        seen += e.records;
        // The batch event carries each sink's rows: kept for the bare insert below.
        const outputs = (e as { outputs?: Record<string, unknown[]> }).outputs ?? {};
        for (const [sink, rows] of Object.entries(outputs)) {
          const list = rowsBySink.get(sink) ?? [];
          for (const r of rows) list.push(r);
          rowsBySink.set(sink, list);
        }
        if (seen >= events.length) caughtUp();
      },
    });
    await done;
    await running.stop(); // flushes every sink: the rows are in ClickHouse when it returns
    const workerMs = performance.now() - first;
    const ch = openClickHouse({ kind: 'embedded', path: dir });
    const tables = topologyTables(running.plan, (t) => `${t}_bare${round}`);
    let rows = 0;
    let bareMs = 0;
    for (const t of tables) {
      await ch.client.command({ query: createTableSql({ ...t.spec, dedupWindow: 0 }) });
      const encode = rowEncoder(t.spec.columns);
      const encoded = (rowsBySink.get(t.sinkId) ?? []).map(encode);
      rows += encoded.length;
      const columns = t.spec.columns.map((c) => c.name);
      const started = performance.now();
      for (let i = 0; i < encoded.length; i += 50_000) {
        await insertRows(ch, t.spec.table, encoded.slice(i, i + 50_000), { columns });
      }
      bareMs += performance.now() - started;
    }
    const r = { events: seen, rows, workerRowsPerS: rows / (workerMs / 1000), bareRowsPerS: rows / (bareMs / 1000) };
    results.push(r);
    console.log(
      `round ${round + 1}: worker ${fmt(seen / (workerMs / 1000))} events/s, ${fmt(r.workerRowsPerS)} rows/s ` +
        `(${rows} rows in ${workerMs.toFixed(0)} ms); bare insert of the same rows ${fmt(r.bareRowsPerS)} rows/s ` +
        `(${bareMs.toFixed(0)} ms)`,
    );
  }
  const w = median(results.map((r) => r.workerRowsPerS));
  const b = median(results.map((r) => r.bareRowsPerS));
  const ev = median(results.map((r) => r.events / (r.rows / r.workerRowsPerS)));
  console.log(
    `median: worker ${fmt(ev)} events/s = ${fmt(w)} rows/s into ClickHouse; bare insert ${fmt(b)} rows/s; ` +
      `rows per event ${(results[0]!.rows / results[0]!.events).toFixed(3)}`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
