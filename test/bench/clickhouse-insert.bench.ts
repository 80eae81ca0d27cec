// Benchmark: rows/s inserting 100k order rows into embedded ClickHouse (chdb) through the sink's
// insertRows, JSONEachRow vs JSONCompactEachRow, batch sizes 10k and 50k; median of 5 runs with spread.
// Run: node test/bench/clickhouse-insert.bench.ts [rows=100000] [runs=5]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import { createTableSql, type TableSpec } from '../../pipelines/sinks/clickhouse/ddl.ts';
import { type InsertFormat, insertRows } from '../../pipelines/sinks/clickhouse/writer.ts';

const ROWS = Number(process.argv[2] ?? 100_000);
const RUNS = Number(process.argv[3] ?? 5);

const spec: TableSpec = {
  table: 'orders_bench',
  columns: [
    { name: 'order_id', type: 'String' },
    { name: 'customer_id', type: 'String' },
    { name: 'placed_at', type: "DateTime64(3, 'UTC')" },
    { name: 'country', type: 'LowCardinality(String)' },
    { name: 'currency', type: 'LowCardinality(String)' },
    { name: 'amount', type: 'Decimal(18, 2)' },
    { name: 'items', type: 'UInt16' },
    { name: 'channel', type: 'LowCardinality(String)' },
    { name: 'partition', type: 'UInt32' },
    { name: 'offset', type: 'UInt64' },
  ],
  engine: { kind: 'MergeTree' },
  orderBy: ['country', 'placed_at'],
  partitionBy: 'toYYYYMM(placed_at)',
};
const columns = spec.columns.map((c) => c.name);
const countries = ['DE', 'FR', 'NL', 'US', 'GB', 'ES', 'IT', 'PL'];
const channels = ['web', 'app', 'store'];

function makeRows(n: number): Record<string, unknown>[] {
  const t0 = Date.UTC(2025, 0, 1);
  const rows = new Array<Record<string, unknown>>(n);
  for (let i = 0; i < n; i++) {
    rows[i] = {
      order_id: `ord-${(1_000_000 + i).toString(36)}-${i}`,
      customer_id: `cus-${(i * 7919) % 50_000}`,
      placed_at: t0 + i * 37,
      country: countries[i % countries.length],
      currency: 'EUR',
      amount: ((i * 13) % 100_000) / 100,
      items: (i % 9) + 1,
      channel: channels[i % channels.length],
      partition: i % 12,
      offset: i,
    };
  }
  return rows;
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! };
};

const dir = mkdtempSync(join(tmpdir(), 'pipelines-ch-bench-'));
const ch = openClickHouse({ kind: 'embedded', path: dir });
try {
  const rows = makeRows(ROWS);
  await ch.client.command({ query: createTableSql({ ...spec, dedupWindow: 0 }) });
  console.log(
    `chdb ${(await (await ch.client.query({ query: 'SELECT version() v', format: 'JSONEachRow' })).json<{ v: string }>())[0]!.v}, ${ROWS} rows, ${RUNS} runs each, node ${process.version}`,
  );
  console.log('format               batch   median rows/s   min..max rows/s    median ms');
  for (const batch of [10_000, 50_000]) {
    for (const format of ['JSONEachRow', 'JSONCompactEachRow'] as InsertFormat[]) {
      const rates: number[] = [];
      // One warm-up run, not counted.
      for (let run = -1; run < RUNS; run++) {
        await ch.client.command({ query: 'TRUNCATE TABLE orders_bench' });
        const t = performance.now();
        for (let i = 0; i < rows.length; i += batch) {
          await insertRows(ch, 'orders_bench', rows.slice(i, i + batch), { columns, format });
        }
        const ms = performance.now() - t;
        if (run >= 0) rates.push(ROWS / (ms / 1000));
      }
      const n = (
        await (
          await ch.client.query({ query: 'SELECT count() c FROM orders_bench', format: 'JSONEachRow' })
        ).json<{ c: string }>()
      )[0]!.c;
      if (Number(n) !== ROWS) throw new Error(`expected ${ROWS} rows, found ${n}`);
      const r = stats(rates);
      const fmt = (x: number) => Math.round(x).toLocaleString('en');
      const line = `${format.padEnd(20)} ${String(batch).padStart(6)}   ${fmt(r.median).padStart(13)}   ${fmt(r.min)}..${fmt(r.max)}`;
      console.log(`${line.padEnd(72)}${((ROWS / r.median) * 1000).toFixed(0).padStart(6)}`);
    }
  }
} finally {
  await ch.close();
  rmSync(dir, { recursive: true, force: true });
}
