// The ladder's peer for L5: ClickHouse's own Kafka table engine, in the same embedded engine (chdb) the project
// ships, doing order-analytics' work: AvroConfluent through the same registry, the segment by joinGet on a Join
// table loaded from the customer snapshots, materialized views into the same three tables. It is at least once
// (the engine commits after the views' inserts, with no dedup of a replay), where L5 is exactly once.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectionsFrom } from '../../pipelines/kafka/connection.ts';
import { openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';

export async function clickHouseKafkaEngine(
  env: Record<string, string>,
  total: number,
  onFirst: () => void,
): Promise<{ records: number; ms: number }> {
  const conn = connectionsFrom(process.env);
  const ch = openClickHouse({ kind: 'embedded', path: mkdtempSync(join(tmpdir(), 'ladder-chk-')) });
  const run = (query: string) => ch.client.command({ query });
  const count = async (query: string) =>
    Number(((await (await ch.client.query({ query, format: 'JSONEachRow' })).json()) as Array<{ n: string }>)[0]?.n);
  const kafka = (topic: string, group: string) =>
    `ENGINE = Kafka SETTINGS kafka_broker_list = '${conn.kafka.brokers.join(',')}', kafka_topic_list = '${topic}', ` +
    `kafka_group_name = '${group}-${Date.now()}', kafka_format = 'AvroConfluent', ` +
    `format_avro_schema_registry_url = '${conn.registry.url}', input_format_avro_allow_missing_fields = 1, ` +
    // Blocks of 64k rows or 1 s, as the worker flushes (the defaults, a million rows or 7.5 s, make one block of
    // a benchmark's topic).
    'kafka_max_block_size = 65536, kafka_flush_interval_ms = 1000';
  try {
    // The lookup first, as a worker loads its tables before it reads.
    await run('CREATE TABLE customers (customerId String, segment String) ENGINE = Join(ANY, LEFT, customerId)');
    await run(
      `CREATE TABLE customers_q (customerId String, segment String) ${kafka(env.CUSTOMERS_TOPIC!, 'chk-customers')}`,
    );
    await run('CREATE MATERIALIZED VIEW customers_mv TO customers AS SELECT customerId, segment FROM customers_q');
    while ((await count('SELECT count() AS n FROM customers')) < 500) await new Promise((r) => setTimeout(r, 50));

    await run(`CREATE TABLE revenue_by_segment_1m (window_start DateTime('UTC'), segment LowCardinality(String),
      revenue Decimal(18, 2), orders UInt64) ENGINE = SummingMergeTree ORDER BY (window_start, segment)`);
    await run(`CREATE TABLE revenue_by_product_1m (window_start DateTime('UTC'), product_id LowCardinality(String),
      revenue Decimal(18, 2), quantity UInt64, lines UInt64) ENGINE = SummingMergeTree ORDER BY (window_start, product_id)`);
    await run(`CREATE TABLE customer_ltv (customer_id String, orders SimpleAggregateFunction(sum, UInt64),
      revenue SimpleAggregateFunction(sum, Decimal(38, 2)), first_order_at SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
      last_order_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))) ENGINE = AggregatingMergeTree ORDER BY customer_id`);
    await run('CREATE TABLE seen (n UInt64) ENGINE = SummingMergeTree ORDER BY tuple()');
    await run(`CREATE TABLE orders_q (eventType String, timestamp Int64, "data.orderId" String, "data.customerId" String,
      "data.totalAmount" Float64, "data.items" Array(Tuple(productId String, quantity UInt32, price Float64)))
      ${kafka(env.ORDERS_TOPIC!, 'chk-orders')}`);
    const placed = `FROM orders_q WHERE eventType = 'OrderPlaced'`;
    const minute = `toStartOfMinute(toDateTime(intDiv(timestamp, 1000), 'UTC'))`;
    await run(`CREATE MATERIALIZED VIEW segment_mv TO revenue_by_segment_1m AS SELECT ${minute} AS window_start,
      if(joinGet('customers', 'segment', "data.customerId") = '', 'unknown',
         joinGet('customers', 'segment', "data.customerId")) AS segment,
      sum("data.totalAmount") AS revenue, count() AS orders ${placed} GROUP BY window_start, segment`);
    await run(`CREATE MATERIALIZED VIEW product_mv TO revenue_by_product_1m AS SELECT ${minute} AS window_start,
      item.1 AS product_id, sum(item.3 * item.2) AS revenue, sum(item.2) AS quantity, count() AS lines
      FROM orders_q ARRAY JOIN "data.items" AS item WHERE eventType = 'OrderPlaced' GROUP BY window_start, product_id`);
    await run(`CREATE MATERIALIZED VIEW ltv_mv TO customer_ltv AS SELECT "data.customerId" AS customer_id,
      count() AS orders, sum("data.totalAmount") AS revenue, min(fromUnixTimestamp64Milli(timestamp, 'UTC')) AS first_order_at,
      max(fromUnixTimestamp64Milli(timestamp, 'UTC')) AS last_order_at ${placed} GROUP BY customer_id`);
    await run('CREATE MATERIALIZED VIEW seen_mv TO seen AS SELECT count() AS n FROM orders_q');
    let first = 0;
    let firstSeen = 0;
    for (;;) {
      const n = await count('SELECT sum(n) AS n FROM seen');
      if (n > 0 && first === 0) {
        onFirst();
        first = performance.now();
        firstSeen = n;
      }
      if (n >= total) return { records: n - firstSeen, ms: performance.now() - first };
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await ch.close();
  }
}
