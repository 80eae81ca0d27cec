// Every ClickHouse panel query of the dashboards, run on embedded ClickHouse (chdb) against the read-model
// tables they name, with a few orders in them: each must return rows for the dashboard's time range, and none
// for a range without data (so the time filter really filters). A panel whose query returns nothing fails here.
//
// The read-model schemas assumed (the projections' owners fix the final ones; see grafana/README.md).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expandClickHouseMacros, loadDashboards, panelQueries } from '../../pipelines/observe/dashboard-queries.ts';
import { type ClickHouse, openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';

jest.setTimeout(60_000);

const READ_MODELS = [
  `CREATE TABLE order_summary (
     order_id String, status LowCardinality(String), customer_id String, total_amount Decimal(18, 2),
     placed_at DateTime64(3, 'UTC'), paid_at Nullable(DateTime64(3, 'UTC')), shipped_at Nullable(DateTime64(3, 'UTC')),
     cancelled_at Nullable(DateTime64(3, 'UTC')), version UInt64
   ) ENGINE = ReplacingMergeTree(version) ORDER BY order_id`,
  `CREATE TABLE revenue_by_segment_1m (
     window_start DateTime('UTC'), segment LowCardinality(String), revenue Decimal(18, 2), orders UInt64
   ) ENGINE = SummingMergeTree ORDER BY (window_start, segment)`,
  `CREATE TABLE revenue_by_product_1m (
     window_start DateTime('UTC'), product_id String, revenue Decimal(18, 2), quantity UInt64
   ) ENGINE = SummingMergeTree ORDER BY (window_start, product_id)`,
];

const dashboards = loadDashboards(join(__dirname, '..', '..', 'grafana', 'dashboards'));
const queries = dashboards.flatMap(({ file, dashboard }) =>
  panelQueries(file, dashboard).filter((q) => q.kind === 'clickhouse'),
);

let dir: string;
let ch: ClickHouse;
const now = Date.now();
const minute = (ago: number) => Math.floor((now - ago * 60_000) / 60_000) * 60;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pipelines-grafana-ch-'));
  ch = openClickHouse({ kind: 'embedded', path: dir });
  for (const query of READ_MODELS) await ch.client.command({ query });
  const ts = (minutesAgo: number) => now - minutesAgo * 60_000;
  const orders = ['placed', 'paid', 'shipped', 'cancelled', 'paid', 'shipped'].map((status, i) => ({
    order_id: `o-${i}`,
    status,
    customer_id: `c-${i % 3}`,
    total_amount: (20 + i * 7.5).toFixed(2),
    placed_at: ts(30 - i),
    paid_at: status === 'paid' || status === 'shipped' ? ts(29 - i) : null,
    shipped_at: status === 'shipped' ? ts(20 - i) : null,
    cancelled_at: status === 'cancelled' ? ts(25) : null,
    version: 1,
  }));
  // An older version of o-0, replaced by the one above (FINAL must count it once).
  orders.push({ ...orders[0]!, status: 'created', version: 0 });
  await ch.client.insert({ table: 'order_summary', values: orders, format: 'JSONEachRow' });
  await ch.client.insert({
    table: 'revenue_by_segment_1m',
    format: 'JSONEachRow',
    values: [5, 4, 3, 3, 2].flatMap((ago, i) => [
      { window_start: minute(ago), segment: 'retail', revenue: (100 + i).toFixed(2), orders: 3 },
      { window_start: minute(ago), segment: 'wholesale', revenue: (900 + i).toFixed(2), orders: 1 },
    ]),
  });
  await ch.client.insert({
    table: 'revenue_by_product_1m',
    format: 'JSONEachRow',
    values: Array.from({ length: 15 }, (_, i) => ({
      window_start: minute(i % 4),
      product_id: `p-${i % 12}`,
      revenue: (10 * (i + 1)).toFixed(2),
      quantity: i + 1,
    })),
  });
});
afterAll(async () => {
  await ch?.close();
  rmSync(dir, { recursive: true, force: true });
});

const run = async (sql: string) =>
  (await (await ch.client.query({ query: sql, format: 'JSONEachRow' })).json()) as Array<Record<string, unknown>>;
const range = (from: number, to: number) => ({ from: new Date(from), to: new Date(to), intervalSeconds: 60 });

test('the dashboards have ClickHouse panels', () => {
  expect(queries.length).toBeGreaterThanOrEqual(6);
});

describe.each(queries.map((q) => [q.where, q.query] as const))('%s', (_, sql) => {
  test('returns rows for the last 24 hours', async () => {
    const expanded = expandClickHouseMacros(sql, range(now - 24 * 3_600_000, now + 60_000));
    expect(expanded).not.toMatch(/\$__/);
    const rows = await run(expanded);
    expect(rows.length).toBeGreaterThan(0);
    if (/\bAS time\b/.test(sql)) {
      for (const r of rows) expect(Number.isNaN(Date.parse(String(r.time).replace(' ', 'T')))).toBe(false);
    }
  });

  test('returns nothing for a range without data (the time filter applies)', async () => {
    const rows = await run(expandClickHouseMacros(sql, range(Date.UTC(2001, 0, 1), Date.UTC(2001, 0, 2))));
    // Aggregates without GROUP BY answer one row of zeros.
    const numbers = rows.flatMap((r) => Object.values(r)).filter((v) => typeof v === 'number' || /^\d/.test(String(v)));
    expect(numbers.every((v) => Number(v) === 0)).toBe(true);
  });
});

test('the funnel and the status panel read the latest version of each order', async () => {
  const q = (title: string) => queries.find((x) => x.where.includes(title))!.query;
  const r = range(now - 3_600_000, now + 60_000);
  const [funnel] = await run(expandClickHouseMacros(q('Funnel'), r));
  expect(funnel).toEqual({ placed: 6, paid: 4, shipped: 2, cancelled: 1 });
  const byStatus = await run(expandClickHouseMacros(q('Orders by status'), r));
  expect(byStatus.find((x) => x.status === 'created')).toBeUndefined();
  expect(byStatus.reduce((a, x) => a + Number(x.orders), 0)).toBe(6);
});
