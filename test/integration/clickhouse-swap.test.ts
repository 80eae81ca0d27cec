// The swap of rebuilt tables on embedded ClickHouse, cut short at each step and run again: it finishes the
// hand-over without swapping anything back, and a live sink refuses a table whose hand-over is unfinished.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ClickHouse, openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import type { TableSpec } from '../../pipelines/sinks/clickhouse/ddl.ts';
import { ensureOffsetsTable, readCommittedOffsets, recordRanges } from '../../pipelines/sinks/clickhouse/offsets.ts';
import { ClickHouseSink } from '../../pipelines/sinks/clickhouse/sink.ts';
import { rebuildLogSink, type SwapTable, swappedIn, swapTables } from '../../pipelines/sinks/clickhouse/swap.ts';

jest.setTimeout(120_000);

const spec = (table: string): TableSpec => ({
  table,
  columns: [
    { name: 'k', type: 'String' },
    { name: 'n', type: 'UInt64' },
  ],
  engine: { kind: 'SummingMergeTree' },
  orderBy: ['k'],
});

let dir: string;
let ch: ClickHouse;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pipelines-ch-swap-'));
  ch = openClickHouse({ kind: 'embedded', path: dir });
});
afterAll(async () => {
  await ch.close();
  rmSync(dir, { recursive: true, force: true });
});

const sum = async (table: string) =>
  Number(
    (
      await (
        await ch.client.query({ query: `SELECT sum(n) AS s FROM ${table}`, format: 'JSONEachRow' })
      ).json<{
        s: string;
      }>()
    )[0]!.s,
  );
const sink = (table: string, id: string) => new ClickHouseSink({ id, topology: 'swap', ch, table: spec(table) });

test('a swap cut short after the exchange is refused by the live sink and finished by running it again', async () => {
  await ensureOffsetsTable(ch);
  const tables: SwapTable[] = ['a', 'b'].map((t) => ({ sinkId: `clickhouse:${t}`, live: t, rebuilt: `${t}_v2` }));
  for (const t of tables) {
    await sink(t.live, t.sinkId).prepare();
    await sink(t.rebuilt, rebuildLogSink(t.sinkId, 'v2')).prepare();
    await ch.client.insert({ table: t.live, values: [{ k: 'x', n: 1 }], format: 'JSONEachRow' });
    await ch.client.insert({ table: t.rebuilt, values: [{ k: 'x', n: 100 }], format: 'JSONEachRow' });
    await recordRanges(ch, 'swap', t.sinkId, [{ topic: 'o', partition: 0, first: 0, last: 9 }]);
    await recordRanges(ch, 'swap', rebuildLogSink(t.sinkId, 'v2'), [{ topic: 'o', partition: 0, first: 40, last: 99 }]);
  }
  // Cut short: table a marked and exchanged, its offsets not moved yet; table b not touched.
  await ch.client.command({ query: `ALTER TABLE a_v2 MODIFY COMMENT 'pipelines: rebuilt by replay --into v2'` });
  await ch.client.command({ query: 'EXCHANGE TABLES a AND a_v2' });
  expect(await swappedIn(ch, 'a')).toBe('v2');
  await expect(sink('a', 'clickhouse:a').prepare()).rejects.toMatchObject({
    code: 'CH_SWAP',
    message: expect.stringMatching(
      /table a: its swap with a rebuild \(--into v2\) did not finish; run `pipelines replay/,
    ),
  });
  // Table b is not swapped yet: its sink starts (the old table and its own offsets log agree).
  await sink('b', 'clickhouse:b').prepare();

  expect(await swapTables(ch, 'swap', tables, 'v2')).toEqual(['already swapped a <-> a_v2', 'swapped b <-> b_v2']);
  for (const t of tables) {
    expect([await sum(t.live), await sum(t.rebuilt)]).toEqual([100, 1]);
    await sink(t.live, t.sinkId).prepare();
    // The live sink now replays the rebuild's last range; the rebuild's own rows are gone.
    expect(await readCommittedOffsets(ch, 'swap', t.sinkId)).toMatchObject([{ first: '40', last: '99' }]);
    expect(await readCommittedOffsets(ch, 'swap', rebuildLogSink(t.sinkId, 'v2'))).toEqual([]);
  }
  // Once more: nothing is swapped back.
  expect(await swapTables(ch, 'swap', tables, 'v2')).toEqual([
    'already swapped a <-> a_v2',
    'already swapped b <-> b_v2',
  ]);
  expect([await sum('a'), await sum('b')]).toEqual([100, 100]);
});

test('a rebuilt table that does not exist is a clear error', async () => {
  await expect(swapTables(ch, 'swap', [{ sinkId: 'clickhouse:c', live: 'c', rebuilt: 'c_v9' }], 'v9')).rejects.toThrow(
    /swap: table c_v9 does not exist; nothing to swap in for c/,
  );
});
