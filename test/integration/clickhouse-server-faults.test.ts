// Network faults against a real ClickHouse server over HTTP (Debian's 18.16 from the local stack,
// so simple tables, JSONEachRow and no insert tokens): the server is stopped while the writer
// flushes, the flush retries with backoff (visible in stats), and once the server is back the
// rows land exactly once. Also: the old server's error text still names table and column.

import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { type ClickHouse, openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import { createTableSql } from '../../pipelines/sinks/clickhouse/ddl.ts';
import { ensureOffsetsTable, readCommittedOffsets } from '../../pipelines/sinks/clickhouse/offsets.ts';
import { insertRows, SinkWriter } from '../../pipelines/sinks/clickhouse/writer.ts';

jest.setTimeout(180_000);

const url = process.env.PIPELINES_CLICKHOUSE_SERVER_URL ?? 'http://127.0.0.1:18123';
const stack = (...args: string[]) =>
  execFileSync('bash', [resolve(__dirname, '../../deploy/local/stack'), ...args], { stdio: 'pipe', timeout: 150_000 });
const table = `faults_${process.pid}`;

let ch: ClickHouse;
beforeAll(async () => {
  stack('up', 'clickhouse');
  ch = openClickHouse({ kind: 'server', url, requestTimeoutMs: 5_000 });
  await ch.client.command({ query: `DROP TABLE IF EXISTS ${table}` });
  await ch.client.command({
    query: createTableSql({
      table,
      columns: [
        { name: 'id', type: 'UInt64' },
        { name: 'amount', type: 'Float64' },
      ],
      engine: { kind: 'MergeTree' },
      orderBy: ['id'],
      dedupWindow: 0, // 18.16 does not know the setting
    }),
  });
  await ensureOffsetsTable(ch);
});
afterAll(async () => {
  stack('up', 'clickhouse'); // whatever happened, leave the server running
  await ch.client.command({ query: `DROP TABLE IF EXISTS ${table}` }).catch(() => undefined);
  await ch.close();
});

const count = async () => {
  const rs = await ch.client.query({
    query: `SELECT count() AS n, sum(amount) AS s FROM ${table}`,
    format: 'JSONEachRow',
  });
  const [r] = await rs.json<{ n: string; s: number }>();
  return { n: Number(r!.n), s: r!.s };
};

test('server down during a flush: retries with backoff, then the rows land exactly once', async () => {
  const acks: { partition: number; next: string }[] = [];
  const writer = new SinkWriter(ch, {
    topology: `faults-${process.pid}`,
    sink: 'server',
    tables: [{ table, columns: ['id', 'amount'] }],
    format: 'JSONEachRow',
    tokens: false,
    maxRows: 1_000_000,
    maxDelayMs: 60_000,
    retry: { policy: { initialMs: 100, maxMs: 1_000 } },
    onAck: (a) => acks.push(a),
  });
  const rows = Array.from({ length: 5000 }, (_, i) => ({ id: i, amount: 1 }));
  await writer.write({ topic: 'orders', partition: 0, first: 0, last: 4999 }, { [table]: rows });

  stack('down', 'clickhouse');
  const flushed = writer.flush();
  // The flush keeps failing and retrying while the server is away; the worker sees it in stats.
  const deadline = Date.now() + 30_000;
  while (writer.stats.retry.retries < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(writer.stats.retry.retries).toBeGreaterThanOrEqual(3);
  expect(writer.stats.retry.retrying).toBe(1);
  expect(writer.stats.inflightRows).toBe(5000);
  expect(writer.stats.retry.errorsByCode.CH_UNAVAILABLE).toBeGreaterThanOrEqual(3);
  expect(acks).toEqual([]);

  stack('up', 'clickhouse');
  await flushed;
  expect(acks).toEqual([{ topic: 'orders', partition: 0, next: '5000' }]);
  expect(await count()).toEqual({ n: 5000, s: 5000 });
  expect(writer.stats.retry).toMatchObject({ retrying: 0, recovered: 1, failures: 0 });
  expect(await readCommittedOffsets(ch, `faults-${process.pid}`, 'server')).toEqual([
    { topic: 'orders', partition: 0, first: '0', last: '4999', seekTo: '0', next: '5000' },
  ]);
  await writer.close();
});

test('a refused connection is retriable; a wrong column from the old server is not, and is named', async () => {
  const down = openClickHouse({ kind: 'server', url: 'http://127.0.0.1:1' });
  await expect(insertRows(down, table, [{ id: 1 }], { columns: ['id'], format: 'JSONEachRow' })).rejects.toMatchObject({
    code: 'CH_UNAVAILABLE',
    retriable: true,
  });
  await down.close();
  const err = await insertRows(ch, table, [{ id: 1, colour: 'red' }], {
    columns: ['id', 'colour'],
    format: 'JSONEachRow',
  }).catch((e: unknown) => e);
  expect(err).toMatchObject({
    code: 'CH_UNKNOWN_COLUMN',
    retriable: false,
    table,
    column: 'colour',
    clickhouseCode: 16,
  });
  const bad = await insertRows(ch, table, [{ id: 'x' }], { columns: ['id'], format: 'JSONEachRow' }).catch(
    (e: unknown) => e,
  );
  expect(bad).toMatchObject({ code: 'CH_TYPE_MISMATCH', table, column: 'id' });
});
