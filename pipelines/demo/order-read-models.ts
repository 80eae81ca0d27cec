// The demo, the product end to end on the local stack: a generated order lifecycle (placed, paid, shipped,
// cancelled) and customer and product snapshots go to Kafka in Avro; the example topologies order-status and
// order-analytics run as workers (`pipelines run --until-caught-up`, one after the other: the embedded engine
// takes one process at a time) into an embedded ClickHouse of the demo's own; then the read models are read
// back with the queries pipelines/sinks/clickhouse/README.md documents.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { AvroCodec, RegistryClient } from '../codec/index.ts';
import { connectionsFrom } from '../kafka/connection.ts';
import { createOrderTopics, orderTopics, produceOrderEvents, produceOrderSnapshots } from '../loadgen/order-topics.ts';
import { orderLifecycleStream } from '../loadgen/orders.ts';
import { textTable } from '../observe/text-table.ts';
import { withClickHouse } from '../sinks/clickhouse/connection.ts';

export interface DemoOptions {
  orders: number;
  seed: number;
  /** The repository root: the topologies are found from here. */
  root: string;
  /** The demo's own folder (read models, worker logs), emptied of its read models at start. */
  dir: string;
  out: (text: string) => void;
}

const TOPOLOGIES = ['topologies/order-status.yaml', 'topologies/order-analytics.yaml'];

/** `pipelines run <file> --until-caught-up` as a child process; its log goes to a file. */
function runTopology(
  root: string,
  file: string,
  group: string,
  env: NodeJS.ProcessEnv,
  log: string,
): Promise<number | null> {
  const child = spawn(
    process.execPath,
    [join(root, 'pipelines/cli/main.ts'), 'run', file, '--group', group, '--until-caught-up', '--no-metrics'],
    { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const sink = createWriteStream(log);
  child.stdout.pipe(sink);
  child.stderr.pipe(sink);
  return new Promise((done, fail) => {
    child.on('error', fail);
    child.on('exit', (code) => done(code));
  });
}

const money = (n: unknown) => Number(n).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const count = (n: unknown) => Number(n).toLocaleString('en-US');

export async function runOrderDemo(o: DemoOptions): Promise<number> {
  const run = Date.now().toString(36);
  const dir = o.dir;
  const data = join(dir, 'chdb');
  // The demo's own read models, started afresh each time (another run's orders would add up in them).
  rmSync(data, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const topics = orderTopics(`demo.${run}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...topics,
    PIPELINES_CLICKHOUSE_PATH: data,
    PIPELINES_LOG_LEVEL: 'info',
  };
  delete env.PIPELINES_CLICKHOUSE_URL; // the demo's read models are embedded, whatever the shell says
  const conn = connectionsFrom(env);
  const codec = new AvroCodec({ registry: new RegistryClient(conn.registry) });

  let t = performance.now();
  await createOrderTopics(conn.kafka, topics);
  await produceOrderSnapshots(conn.kafka, codec, topics);
  const events = [...orderLifecycleStream(o.orders, { seed: o.seed })];
  await produceOrderEvents(conn.kafka, codec, topics, events);
  o.out(
    `produced ${count(events.length)} order events (${count(o.orders)} orders: placed, paid, shipped, cancelled) to ` +
      `${topics.ORDERS_TOPIC}, and 500 customers and 50 products to their snapshot topics, in ${secs(t)}\n`,
  );
  for (const file of TOPOLOGIES) {
    const name = file.replace(/^.*\/|\.yaml$/g, '');
    const log = join(dir, `${name}.log`);
    t = performance.now();
    const code = await runTopology(o.root, file, `demo-${run}-${name}`, env, log);
    if (code !== 0) {
      o.out(`${name}: the worker exited with ${code}; its log: ${relative(process.cwd(), log)}\n`);
      return 1;
    }
    o.out(`ran ${file} until caught up in ${secs(t)}, start-up included (log: ${relative(process.cwd(), log)})\n`);
  }

  await withClickHouse({ kind: 'embedded', path: data }, async (ch) => {
    const rows = async (sql: string) =>
      (await (await ch.client.query({ query: sql, format: 'JSONEachRow' })).json<Record<string, unknown>>()) ?? [];
    const table = (head: string[], cells: string[][]) =>
      `${textTable(head, cells)
        .map((l) => `  ${l}`)
        .join('\n')}\n`;

    const status = await rows(
      `SELECT toString(status) AS status, count() AS orders, sum(total_amount) AS amount FROM order_summary FINAL GROUP BY status ORDER BY status`,
    );
    o.out(`\norder_summary: the current state of each order (order-status)\n`);
    o.out(
      table(
        ['status', 'orders', 'amount'],
        status.map((r) => [String(r.status), count(r.orders), money(r.amount)]),
      ),
    );

    const [f] = await rows(`SELECT count() AS placed, countIf(paid_at IS NOT NULL) AS paid,
        countIf(shipped_at IS NOT NULL) AS shipped,
        avgIf(dateDiff('millisecond', placed_at, paid_at), paid_at IS NOT NULL) / 1000 AS to_paid_s,
        avgIf(dateDiff('millisecond', paid_at, shipped_at), shipped_at IS NOT NULL) / 1000 AS to_shipped_s
      FROM order_summary FINAL WHERE placed_at IS NOT NULL`);
    o.out(
      `\norder funnel: placed ${count(f!.placed)} -> paid ${count(f!.paid)} (${pct(f!.paid, f!.placed)}, mean ${Number(f!.to_paid_s).toFixed(1)} s)` +
        ` -> shipped ${count(f!.shipped)} (${pct(f!.shipped, f!.paid)}, mean ${Number(f!.to_shipped_s).toFixed(1)} s)\n`,
    );

    const segments =
      await rows(`SELECT segment, sum(revenue) AS revenue, sum(orders) AS orders, uniqExact(window_start) AS minutes
      FROM revenue_by_segment_1m GROUP BY segment ORDER BY revenue DESC`);
    o.out(`\nrevenue_by_segment_1m: revenue per minute and customer segment (order-analytics), summed over the run\n`);
    o.out(
      table(
        ['segment', 'revenue', 'orders', 'minutes'],
        segments.map((r) => [String(r.segment), money(r.revenue), count(r.orders), count(r.minutes)]),
      ),
    );

    const products = await rows(`SELECT product_id, sum(revenue) AS revenue, sum(quantity) AS quantity
      FROM revenue_by_product_1m GROUP BY product_id ORDER BY revenue DESC LIMIT 5`);
    o.out(`\nrevenue_by_product_1m: the top 5 products by revenue\n`);
    o.out(
      table(
        ['product', 'revenue', 'units'],
        products.map((r) => [String(r.product_id), money(r.revenue), count(r.quantity)]),
      ),
    );

    const customers = await rows(`SELECT customer_id, sum(orders) AS orders, sum(revenue) AS revenue
      FROM customer_ltv GROUP BY customer_id ORDER BY revenue DESC LIMIT 5`);
    o.out(`\ncustomer_ltv: the top 5 customers by lifetime value\n`);
    o.out(
      table(
        ['customer', 'orders', 'revenue'],
        customers.map((r) => [String(r.customer_id), count(r.orders), money(r.revenue)]),
      ),
    );
  });
  const at = relative(process.cwd(), data) || '.';
  o.out(
    `\nThe read models stay in ${at} (replaced by the next demo). Query them, e.g.:\n` +
      `  PIPELINES_CLICKHOUSE_PATH=${at} npx pipelines clickhouse query "SELECT segment, sum(revenue) FROM revenue_by_segment_1m GROUP BY segment"\n` +
      `pipelines/sinks/clickhouse/README.md has the query of each.\n`,
  );
  return 0;
}

function secs(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}

function pct(a: unknown, b: unknown): string {
  return Number(b) > 0 ? `${((100 * Number(a)) / Number(b)).toFixed(1)}%` : '-';
}
