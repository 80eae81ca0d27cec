// The sink on embedded ClickHouse (chdb 26.x): insert tokens deduplicate on MergeTree, Summing-
// and AggregatingMergeTree (also through a Null table and a materialized view), DDL and its diff,
// errors that name table and column, and the offsets log.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ClickHouse, openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import { createTableSql, describeColumns, ensureTable, type TableSpec } from '../../pipelines/sinks/clickhouse/ddl.ts';
import { ensureOffsetsTable, readCommittedOffsets, recordRanges } from '../../pipelines/sinks/clickhouse/offsets.ts';
import { insertRows } from '../../pipelines/sinks/clickhouse/writer.ts';

jest.setTimeout(60_000);

let dir: string;
let ch: ClickHouse;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pipelines-ch-it-'));
  ch = openClickHouse({ kind: 'embedded', path: dir });
});
afterAll(async () => {
  await ch.close();
  rmSync(dir, { recursive: true, force: true });
});

const one = async <T>(query: string): Promise<T> => {
  const rs = await ch.client.query({ query, format: 'JSONEachRow' });
  return (await rs.json<T>())[0]!;
};
const exec = (query: string) => ch.client.command({ query });

describe('insert tokens', () => {
  const orders: TableSpec = {
    table: 'orders',
    columns: [
      { name: 'id', type: 'UInt64' },
      { name: 'day', type: 'Date' },
      { name: 'amount', type: 'Float64' },
    ],
    engine: { kind: 'MergeTree' },
    orderBy: ['id'],
    partitionBy: 'toYYYYMM(day)',
  };
  const columns = orders.columns.map((c) => c.name);
  const batch = [
    { id: 1, day: '2025-01-31', amount: 10 },
    { id: 2, day: '2025-02-01', amount: 5 }, // a second partition: two blocks, two token entries
  ];
  beforeAll(() => exec(createTableSql(orders)));

  test.each(['JSONEachRow', 'JSONCompactEachRow'] as const)(
    'MergeTree, %s: same token once, another token twice',
    async (format) => {
      await exec('TRUNCATE TABLE orders');
      await insertRows(ch, 'orders', batch, { columns, format, token: `t-${format}` });
      await insertRows(ch, 'orders', batch, { columns, format, token: `t-${format}` });
      expect(await one('SELECT count() AS n, sum(amount) AS s FROM orders')).toEqual({ n: 2, s: 15 });
      await insertRows(ch, 'orders', batch, { columns, format, token: `u-${format}` });
      expect(await one('SELECT count() AS n, sum(amount) AS s FROM orders')).toEqual({ n: 4, s: 30 });
    },
  );

  test('a token does not leak into the next insert of the session (chdb keeps SET settings)', async () => {
    await exec('TRUNCATE TABLE orders');
    await insertRows(ch, 'orders', [{ id: 7, day: '2025-01-01', amount: 1 }], { columns, token: 'leak' });
    await insertRows(ch, 'orders', [{ id: 8, day: '2025-01-01', amount: 1 }], { columns });
    await insertRows(ch, 'orders', [{ id: 9, day: '2025-01-01', amount: 1 }], { columns });
    expect(await one('SELECT count() AS n FROM orders')).toEqual({ n: 3 });
  });

  test('without a token, identical blocks are dropped by hash on a table with a dedup window', async () => {
    // The reason every sink insert carries a token: equal partial aggregates are legitimate.
    await exec('TRUNCATE TABLE orders');
    const row = [{ id: 1, day: '2025-01-01', amount: 1 }];
    await insertRows(ch, 'orders', row, { columns });
    await insertRows(ch, 'orders', row, { columns });
    expect(await one('SELECT count() AS n FROM orders')).toEqual({ n: 1 });
    await insertRows(ch, 'orders', row, { columns, token: 'a' });
    await insertRows(ch, 'orders', row, { columns, token: 'b' });
    expect(await one('SELECT count() AS n FROM orders')).toEqual({ n: 3 });
  });

  test('SummingMergeTree: a repeated partial sum is not counted twice', async () => {
    await ensureTable(ch, {
      table: 'daily',
      columns: [
        { name: 'day', type: 'Date' },
        { name: 'orders', type: 'UInt64' },
        { name: 'amount', type: 'Float64' },
      ],
      engine: { kind: 'SummingMergeTree' },
      orderBy: ['day'],
    });
    const partial = [{ day: '2025-01-01', orders: 3, amount: 30 }];
    const cols = ['day', 'orders', 'amount'];
    await insertRows(ch, 'daily', partial, { columns: cols, token: 's1' });
    await insertRows(ch, 'daily', partial, { columns: cols, token: 's1' });
    await insertRows(ch, 'daily', partial, { columns: cols, token: 's2' });
    await exec('OPTIMIZE TABLE daily FINAL');
    expect(await one('SELECT sum(orders) AS n, sum(amount) AS s FROM daily')).toEqual({ n: 6, s: 60 });
  });

  test('AggregatingMergeTree with sumState/countState: INSERT SELECT with a token', async () => {
    await ensureTable(ch, {
      table: 'by_country',
      columns: [
        { name: 'country', type: 'LowCardinality(String)' },
        { name: 'amount', type: 'AggregateFunction(sum, Float64)' },
        { name: 'orders', type: 'AggregateFunction(count)' },
      ],
      engine: { kind: 'AggregatingMergeTree' },
      orderBy: ['country'],
    });
    const insert = (token: string) =>
      ch.client.command({
        query: `INSERT INTO by_country SELECT ['DE', 'FR'][number % 2 + 1], sumState(toFloat64(number)), countState()
                FROM numbers(100) GROUP BY 1`,
        clickhouse_settings: { insert_deduplication_token: token, async_insert: 0 },
      });
    await insert('a1');
    await insert('a1');
    expect(await one('SELECT sumMerge(amount) AS s, countMerge(orders) AS n FROM by_country')).toEqual({
      s: 4950,
      n: 100,
    });
    await insert('a2');
    expect(await one('SELECT sumMerge(amount) AS s, countMerge(orders) AS n FROM by_country')).toEqual({
      s: 9900,
      n: 200,
    });
  });

  test('AggregatingMergeTree fed by a Null table and a materialized view: the token reaches the view', async () => {
    await ensureTable(ch, {
      table: 'by_country_mv',
      columns: [
        { name: 'country', type: 'LowCardinality(String)' },
        { name: 'amount', type: 'AggregateFunction(sum, Float64)' },
        { name: 'orders', type: 'AggregateFunction(count)' },
      ],
      engine: { kind: 'AggregatingMergeTree' },
      orderBy: ['country'],
    });
    await ensureTable(ch, {
      table: 'by_country_in',
      columns: [
        { name: 'country', type: 'String' },
        { name: 'amount', type: 'Float64' },
      ],
      engine: { kind: 'Null' },
    });
    await exec(`CREATE MATERIALIZED VIEW IF NOT EXISTS by_country_view TO by_country_mv AS
      SELECT country, sumState(amount) AS amount, countState() AS orders FROM by_country_in GROUP BY country`);
    const rows = [
      { country: 'DE', amount: 1.5 },
      { country: 'DE', amount: 2 },
      { country: 'FR', amount: 3 },
    ];
    const cols = ['country', 'amount'];
    await insertRows(ch, 'by_country_in', rows, { columns: cols, token: 'm1' });
    await insertRows(ch, 'by_country_in', rows, { columns: cols, token: 'm1' });
    const q = "SELECT sumMerge(amount) AS s, countMerge(orders) AS n FROM by_country_mv WHERE country = 'DE'";
    expect(await one(q)).toEqual({ s: 3.5, n: 2 });
    await insertRows(ch, 'by_country_in', rows, { columns: cols, token: 'm2' });
    expect(await one(q)).toEqual({ s: 7, n: 4 });
  });
});

describe('errors name the table and the column', () => {
  beforeAll(() => exec('CREATE TABLE IF NOT EXISTS e1 (k UInt32, s String, d Date) ENGINE = MergeTree ORDER BY k'));

  test.each(['JSONEachRow', 'JSONCompactEachRow'] as const)('a column missing from the table (%s)', async (format) => {
    const err = await insertRows(ch, 'e1', [{ k: 1, zz: 2 }], { columns: ['k', 'zz'], format }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      name: 'ClickHouseSinkError',
      code: 'CH_UNKNOWN_COLUMN',
      retriable: false,
      table: 'e1',
      column: 'zz',
    });
    expect((err as Error).message).toMatch(/column "zz" does not exist in table "e1"/);
  });

  test('a key the row has but the column list lacks (JSONEachRow)', async () => {
    const err = await insertRows(ch, 'e1', [{ k: 1, s: 'x', extra: 1 }], {
      columns: ['k', 's'],
      format: 'JSONEachRow',
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CH_UNKNOWN_COLUMN', table: 'e1', column: 'extra' });
  });

  test('a value of the wrong type', async () => {
    const rows = [
      { k: 1, s: 'a', d: '2025-01-01' },
      { k: 2, s: 'b', d: 'not a date' },
    ];
    const err = await insertRows(ch, 'e1', rows, { columns: ['k', 's', 'd'], format: 'JSONEachRow' }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'CH_TYPE_MISMATCH', retriable: false, table: 'e1', column: 'd', row: 2 });
    expect((err as Error).message).toMatch(/column "d" in table "e1" does not match its type \(row 2 of the batch\)/);
    const neg = await insertRows(ch, 'e1', [{ k: -1 }], { columns: ['k'] }).catch((e: unknown) => e);
    expect(neg).toMatchObject({ code: 'CH_TYPE_MISMATCH', column: 'k' });
  });

  test('an unknown table', async () => {
    const err = await insertRows(ch, 'nope', [{ k: 1 }], { columns: ['k'] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CH_UNKNOWN_TABLE', retriable: false, table: 'nope' });
  });
});

describe('DDL', () => {
  const spec: TableSpec = {
    table: 'evolving',
    columns: [
      { name: 'id', type: 'UInt64' },
      { name: 'amount', type: 'Decimal(18,2)' },
    ],
    engine: { kind: 'ReplacingMergeTree', version: 'id' },
    orderBy: ['id'],
    // Within the Date range (1970-2149): 200 years from 1970 wraps to 1990, and a TTL merge could drop the row.
    ttl: 'toDate(id) + INTERVAL 100 YEAR',
  };

  test('creates, then adds columns, refuses changes and drops unless allowed', async () => {
    expect((await ensureTable(ch, spec)).created).toBe(true);
    expect(await describeColumns(ch, 'evolving')).toEqual([
      { name: 'id', type: 'UInt64' },
      { name: 'amount', type: 'Decimal(18, 2)' },
    ]);
    // Same spec again: nothing to do (types compare modulo whitespace).
    expect((await ensureTable(ch, spec)).applied).toEqual([]);
    const added = await ensureTable(ch, {
      ...spec,
      columns: [...spec.columns, { name: 'note', type: 'String', default: "'n/a'" }],
    });
    expect(added.diff.add.map((c) => c.name)).toEqual(['note']);
    await insertRows(ch, 'evolving', [{ id: 1, amount: 2.5 }], { columns: ['id', 'amount'] });
    expect(await one('SELECT note FROM evolving')).toEqual({ note: 'n/a' });

    const changed = {
      ...spec,
      columns: [
        { name: 'id', type: 'UInt64' },
        { name: 'amount', type: 'Float64' },
      ],
    };
    const refused = await ensureTable(ch, changed).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'CH_SCHEMA_CHANGE_REFUSED', table: 'evolving', column: 'amount' });
    expect((refused as Error).message).toMatch(
      /"amount" would change type Decimal\(18, 2\) -> Float64; column "note" would be dropped/,
    );
    await ensureTable(ch, changed, { allowDestructive: true });
    expect(await describeColumns(ch, 'evolving')).toEqual([
      { name: 'id', type: 'UInt64' },
      { name: 'amount', type: 'Float64' },
    ]);
  });
});

describe('offsets log', () => {
  test('the last recorded range per partition, isolated by topology and sink', async () => {
    await ensureOffsetsTable(ch);
    await ensureOffsetsTable(ch); // idempotent
    await recordRanges(ch, 'topo', 'sink', [
      { topic: 'orders', partition: 0, first: 0, last: 99 },
      { topic: 'orders', partition: 1, first: 0, last: 49 },
    ]);
    await recordRanges(ch, 'topo', 'sink', [{ topic: 'orders', partition: 0, first: 100, last: 180 }]);
    await recordRanges(ch, 'topo', 'other', [{ topic: 'orders', partition: 0, first: 500, last: 600 }]);
    await recordRanges(ch, 'topo', 'sink', [
      { topic: 'orders', partition: 0, first: '9007199254740993', last: '9007199254741000' },
    ]);
    expect(await readCommittedOffsets(ch, 'topo', 'sink')).toEqual([
      {
        topic: 'orders',
        partition: 0,
        first: '9007199254740993',
        last: '9007199254741000',
        seekTo: '9007199254740993',
        next: '9007199254741001',
      },
      { topic: 'orders', partition: 1, first: '0', last: '49', seekTo: '0', next: '50' },
    ]);
    expect(await readCommittedOffsets(ch, 'none', 'sink')).toEqual([]);
  });
});
