// Column types inferred from the type flow, on the real engine (embedded ClickHouse): a topology without
// `columns`, its output rows from the offline driver written by the ClickHouse sink, read back with the types
// the validator chose (counts UInt64, Avro ints Int64, window bounds and event times DateTime64, lists Array).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkFile } from '../../pipelines/compile/compile.ts';
import { openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import { ClickHouseSink } from '../../pipelines/sinks/clickhouse/sink.ts';
import { tableSpecFor } from '../../pipelines/sinks/clickhouse/table.ts';
import { TopologyTestDriver } from '../../pipelines/testing/driver.ts';
import { placed, topology, writeTopology } from '../unit/topology/helpers.ts';

jest.setTimeout(120_000);

const steps = `    - id: lines
      explode:
        list: event.data.items
        fields: { orderId: event.data.orderId, at: event.timestamp, productId: item.productId, qty: item.quantity, price: item.price }
    - id: per-product
      aggregate:
        window: { tumbling: 1m, on: at }
        groupBy: [productId]
        emit: perBatch
        measures: { qty: sum(qty), revenue: sum(price), lines: count(), orders: distinct(orderId), last: max(at) }`;
const sinks =
  '    - clickhouse: { table: per_product, engine: { type: SummingMergeTree, orderBy: [windowStart, productId] } }';

test('a table created from inferred types takes the rows the steps emit, with those types', async () => {
  const file = writeTopology(topology({ steps, sinks }));
  const checked = checkFile(file, { env: {} }).checked!;
  const sinkCheck = checked.sinks[0]!;
  const table = tableSpecFor(sinkCheck.config as never, sinkCheck.scope);

  const d = await TopologyTestDriver.load(file, { env: {} });
  const item = (productId: string, quantity: number, price: number) => ({ productId, quantity, price });
  d.pipe([
    {
      value: placed({ timestamp: 61_000 }, { orderId: 'o1', items: [item('p1', 2, 2.5), item('p2', 1, 10)] }),
      offset: 0,
    },
    { value: placed({ timestamp: 62_500 }, { orderId: 'o2', items: [item('p1', 3, 2.5)] }), offset: 1 },
  ]);
  d.flush();
  const rows = d.output(sinkCheck.id);
  expect(rows.length).toBe(2);

  const dir = mkdtempSync(join(tmpdir(), 'pipelines-ch-inferred-'));
  const ch = openClickHouse({ kind: 'embedded', path: dir });
  try {
    const sink = new ClickHouseSink({ id: sinkCheck.id, topology: 't', ch, table, writer: { maxDelayMs: 10 } });
    await sink.prepare();
    await sink.assigned([{ topic: 'orders.events', partition: 0, committed: undefined }]);
    await sink.append(rows, { topic: 'orders.events', partition: 0, first: '0', last: '1' });
    await sink.flush();
    const described = await (
      await ch.client.query({ query: 'DESCRIBE TABLE per_product', format: 'JSONEachRow' })
    ).json<{
      name: string;
      type: string;
    }>();
    expect(Object.fromEntries(described.map((c) => [c.name, c.type]))).toEqual({
      productId: 'String',
      windowStart: "DateTime64(3, 'UTC')",
      windowEnd: "DateTime64(3, 'UTC')",
      qty: 'Int64',
      revenue: 'Float64',
      lines: 'UInt64',
      orders: 'Array(String)',
      last: "DateTime64(3, 'UTC')",
    });
    const got = await (
      await ch.client.query({
        query: `SELECT productId, toUnixTimestamp64Milli(windowStart) AS ws, qty, revenue, lines, arraySort(orders) AS orders,
                       toUnixTimestamp64Milli(last) AS last
                FROM per_product ORDER BY productId`,
        format: 'JSONEachRow',
        clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
      })
    ).json();
    expect(got).toEqual([
      { productId: 'p1', ws: 60_000, qty: 5, revenue: 5, lines: 2, orders: ['o1', 'o2'], last: 62_500 },
      { productId: 'p2', ws: 60_000, qty: 1, revenue: 10, lines: 1, orders: ['o1'], last: 61_000 },
    ]);
    await sink.close();
  } finally {
    await ch.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
