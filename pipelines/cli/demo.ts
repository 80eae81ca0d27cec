// `pipelines demo`: the main job on embedded defaults, on the local Kafka and Schema Registry.
import { parseArgs } from 'node:util';
import { runOrderSlice } from '../demo/order-slice.ts';
import { orderPlacedStream } from '../loadgen/orders.ts';
import { clickHouseConfigFromEnv, openClickHouse } from '../sinks/clickhouse/connection.ts';
import type { Command } from './args.ts';

export const demo: Command = {
  summary: 'generate an order stream, run it through Kafka into embedded ClickHouse, print what landed',
  async run(args) {
    const { values } = parseArgs({
      args,
      options: { events: { type: 'string', default: '10000' }, seed: { type: 'string', default: '42' } },
    });
    const brokers = (process.env.PIPELINES_BROKERS ?? '127.0.0.1:19092').split(',');
    const registryUrl = process.env.PIPELINES_REGISTRY_URL ?? 'http://127.0.0.1:18081/apis/ccompat/v7';
    const ch = openClickHouse(clickHouseConfigFromEnv());
    const clickhouse = ch.client;
    const run = Date.now().toString(36);
    const table = `demo_orders_${run}`;
    try {
      const result = await runOrderSlice({
        brokers,
        registryUrl,
        clickhouse,
        topic: `demo.orders.${run}`,
        group: `demo-${run}`,
        table,
        events: orderPlacedStream(Number(values.events), { seed: Number(values.seed) }),
        log: (m) => process.stdout.write(`  ${m}\n`),
      });
      const query = async <T>(sql: string) =>
        (await (await clickhouse.query({ query: sql, format: 'JSONEachRow' })).json()) as T[];
      const [summary] = await query<{ orders: string; revenue: number; first: string; last: string }>(
        `SELECT count() AS orders, round(sum(total_amount), 2) AS revenue, min(event_time) AS first, max(event_time) AS last FROM ${table}`,
      );
      const top = await query<{ customer_id: string; orders: string; revenue: number }>(
        `SELECT customer_id, count() AS orders, round(sum(total_amount), 2) AS revenue FROM ${table} GROUP BY customer_id ORDER BY revenue DESC LIMIT 5`,
      );
      process.stdout.write(
        `\nLanded in ClickHouse (${ch.description}, table ${table}) in ${(result.elapsedMs / 1000).toFixed(1)} s:\n` +
          `  ${summary!.orders} orders, revenue ${summary!.revenue}, event time ${summary!.first} .. ${summary!.last}\n` +
          `  top customers by revenue:\n${top.map((r) => `    ${r.customer_id}  ${String(r.orders).padStart(3)} orders  ${r.revenue}`).join('\n')}\n`,
      );
      return result.landed === result.produced ? 0 : 1;
    } finally {
      await ch.close();
    }
  },
};
