// The first vertical slice on the real stack: Apicurio + Kafka + embedded ClickHouse (chdb).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { orderPlacedStream } from '../../pipelines/loadgen/orders.ts';
import { openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import { runOrderSlice } from './order-slice.ts';
import { localStack } from './stack.ts';

jest.setTimeout(120_000);

test('1,000 OrderPlaced events go through registry, Kafka and into ClickHouse with the right count and sum', async () => {
  const run = `${Date.now()}`;
  const dir = mkdtempSync(join(tmpdir(), 'slice-ch-'));
  const ch = openClickHouse({ kind: 'embedded', path: dir });
  const clickhouse = ch.client;
  try {
    const events = [...orderPlacedStream(1000, { seed: 7 })];
    // Independent expectation: straight from the generated events, not from anything the slice computed.
    const expectedSum = events.reduce((s, e) => s + e.data.totalAmount, 0);
    const result = await runOrderSlice({
      ...localStack(),
      clickhouse,
      topic: `slice.orders.${run}`,
      group: `slice-${run}`,
      table: 'orders_placed',
      events,
    });
    expect(result).toMatchObject({ produced: 1000, landed: 1000 });
    const rs = await clickhouse.query({
      query: 'SELECT count() AS n, uniqExact(order_id) AS orders, sum(total_amount) AS total FROM orders_placed',
      format: 'JSONEachRow',
    });
    const [row] = (await rs.json()) as Array<{ n: string; orders: string; total: number }>;
    expect(Number(row!.n)).toBe(1000);
    expect(Number(row!.orders)).toBe(1000);
    expect(row!.total).toBeCloseTo(expectedSum, 6);
  } finally {
    await ch.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
