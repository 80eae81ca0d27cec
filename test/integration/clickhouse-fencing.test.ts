// Fencing between workers that share one ClickHouse (offsets.ts): a new owner claims a partition before it reads
// the last range; a previous owner still flushing is fenced before it inserts, or its range is seen and replayed
// under the same tokens. On the embedded engine, several writers in one process: the semantics of one server.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ClickHouse, openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import { createTableSql, ensureTable, type TableSpec } from '../../pipelines/sinks/clickhouse/ddl.ts';
import {
  assertStillOwner,
  claimPartitions,
  dedupToken,
  ensureOffsetsTable,
  OFFSETS_TABLE,
  offsetsTableSpec,
  readCommittedOffsets,
  recordRanges,
} from '../../pipelines/sinks/clickhouse/offsets.ts';
import { insertRows, SinkWriter } from '../../pipelines/sinks/clickhouse/writer.ts';

jest.setTimeout(60_000);

let dir: string;
let ch: ClickHouse;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pipelines-ch-fence-'));
  ch = openClickHouse({ kind: 'embedded', path: dir });
});
afterAll(async () => {
  await ch.close();
  rmSync(dir, { recursive: true, force: true });
});

const count = async (query: string): Promise<number> => {
  const rs = await ch.client.query({ query, format: 'JSONEachRow' });
  return Number((await rs.json<{ n: string }>())[0]!.n);
};
const p0 = [{ topic: 'orders', partition: 0 }];

test('an offsets log from before claims is rebuilt in place, its last ranges kept', async () => {
  const old = offsetsTableSpec();
  const before = {
    ...old,
    columns: old.columns.filter((c) => c.name !== 'claim'),
    engine: { kind: 'ReplacingMergeTree' as const, version: 'last_offset' },
  };
  await ch.client.command({ query: createTableSql(before) });
  await ch.client.command({
    query: `INSERT INTO ${OFFSETS_TABLE} (topology, sink, topic, partition, first_offset, last_offset)
      VALUES ('old', 's', 'orders', 0, 0, 99), ('old', 's', 'orders', 0, 100, 180), ('old', 's', 'orders', 1, 0, 9)`,
  });
  // As `clickhouse apply` leaves it: the claim column added, the engine still versioned by last_offset.
  await ch.client.command({ query: `ALTER TABLE ${OFFSETS_TABLE} ADD COLUMN claim UInt64 DEFAULT 0` });
  await ensureOffsetsTable(ch);
  await ensureOffsetsTable(ch); // idempotent
  expect(await readCommittedOffsets(ch, 'old', 's')).toEqual([
    { topic: 'orders', partition: 0, first: '100', last: '180', seekTo: '100', next: '181' },
    { topic: 'orders', partition: 1, first: '0', last: '9', seekTo: '0', next: '10' },
  ]);
  expect(await count(`SELECT count() AS n FROM system.tables WHERE name LIKE '${OFFSETS_TABLE}_%'`)).toBe(0);
  expect(
    await count(
      `SELECT count() AS n FROM system.tables WHERE name = '${OFFSETS_TABLE}' AND engine_full LIKE 'ReplacingMergeTree(claim)%'`,
    ),
  ).toBe(1);
});

test('a newer claim fences the older owner, and a range the fenced owner records late is not the last', async () => {
  await ensureOffsetsTable(ch);
  const a = await claimPartitions(ch, 'fence', 's', 'worker-a', p0);
  await recordRanges(ch, 'fence', 's', [{ ...p0[0]!, first: 0, last: 99, claim: a[0]!.claim }]);
  await assertStillOwner(ch, 'fence', 's', 'worker-a', a); // still its own
  const b = await claimPartitions(ch, 'fence', 's', 'worker-b', p0);
  expect(b[0]!.claim).toBe(a[0]!.claim + 1n);
  // B reads after claiming: A's range is there, to replay.
  expect((await readCommittedOffsets(ch, 'fence', 's'))[0]).toMatchObject({ first: '0', last: '99' });
  await recordRanges(ch, 'fence', 's', [{ ...p0[0]!, first: 0, last: 99, claim: b[0]!.claim }]);
  // A, still running, records its next range late, then checks: fenced.
  await recordRanges(ch, 'fence', 's', [{ ...p0[0]!, first: 100, last: 500, claim: a[0]!.claim }]);
  await expect(assertStillOwner(ch, 'fence', 's', 'worker-a', a)).rejects.toMatchObject({
    code: 'CH_FENCED',
    message: expect.stringMatching(/partition 0 of orders was taken over by another worker/),
  });
  // The last range is B's, whatever A recorded after it (and after merges too).
  await ch.client.command({ query: `OPTIMIZE TABLE ${OFFSETS_TABLE} FINAL` });
  expect((await readCommittedOffsets(ch, 'fence', 's'))[0]).toMatchObject({ first: '0', last: '99' });
});

describe('two writers of one partition', () => {
  const table: TableSpec = {
    table: 'fenced_rows',
    columns: [{ name: 'offset', type: 'UInt64' }],
    engine: { kind: 'MergeTree' },
    orderBy: ['offset'],
  };
  const writer = (owner: string, acks: string[]) =>
    new SinkWriter(ch, {
      topology: 'writers',
      sink: 's',
      owner,
      tables: [{ table: table.table, columns: ['offset'] }],
      maxDelayMs: 60_000,
      retry: { policy: { initialMs: 1, maxMs: 1, maxAttempts: 1 } },
      onAck: (a) => acks.push(a.next),
    });
  const rows = (first: number, last: number) =>
    Array.from({ length: last - first + 1 }, (_, i) => [first + i] as unknown[]);

  beforeAll(async () => {
    await ensureOffsetsTable(ch);
    await ensureTable(ch, table);
  });

  test('the old owner flushing after the new one claimed is fenced: nothing inserted, nothing acknowledged', async () => {
    const acksA: string[] = [];
    const a = writer('worker-a', acksA);
    a.claimed(await claimPartitions(ch, 'writers', 's', 'worker-a', p0));
    await a.write({ ...p0[0]!, first: 0, last: 9 }, { [table.table]: rows(0, 9) });

    const acksB: string[] = [];
    const b = writer('worker-b', acksB);
    b.claimed(await claimPartitions(ch, 'writers', 's', 'worker-b', p0));
    expect(await readCommittedOffsets(ch, 'writers', 's')).toEqual([]); // A had recorded nothing yet

    await expect(a.flush()).rejects.toMatchObject({ code: 'CH_FENCED' });
    expect(acksA).toEqual([]);
    expect(await count(`SELECT count() AS n FROM ${table.table}`)).toBe(0);

    // B reads the records again from the last commit (none) and writes them once.
    await b.write({ ...p0[0]!, first: 0, last: 9 }, { [table.table]: rows(0, 9) });
    await b.flush();
    expect(acksB).toEqual(['10']);
    expect(await count(`SELECT count() AS n FROM ${table.table}`)).toBe(10);
    expect((await readCommittedOffsets(ch, 'writers', 's'))[0]).toMatchObject({ first: '0', last: '9' });
    await Promise.all([a.close(), b.close()]);
  });

  test('an old owner that passed its check before the claim is seen by the new owner, which replays it once', async () => {
    // A's flush of [10, 19]: recorded, checked, and inserted after B claimed.
    const [claimA] = await claimPartitions(ch, 'writers', 's', 'worker-a', p0);
    const range = { ...p0[0]!, first: 10, last: 19 };
    await recordRanges(ch, 'writers', 's', [{ ...range, claim: claimA!.claim }]);
    await assertStillOwner(ch, 'writers', 's', 'worker-a', [claimA!]);
    await claimPartitions(ch, 'writers', 's', 'worker-b', p0);
    const token = dedupToken({ ...range, topology: 'writers', sink: 's', table: table.table });
    await insertRows(ch, table.table, rows(10, 19), { columns: ['offset'], token });

    // B: the last range is A's, to be replayed exactly; its insert carries A's token and is dropped.
    expect((await readCommittedOffsets(ch, 'writers', 's'))[0]).toMatchObject({ first: '10', last: '19' });
    const acks: string[] = [];
    const b = writer('worker-b', acks);
    b.claimed([{ ...p0[0]!, claim: claimA!.claim + 1n }]);
    b.expectReplay([{ ...range, first: '10', last: '19', seekTo: '10', next: '20' }]);
    await b.write(range, { [table.table]: rows(10, 19) });
    await b.flush();
    expect(acks).toEqual(['20']);
    expect(await count(`SELECT count() AS n FROM ${table.table} WHERE offset BETWEEN 10 AND 19`)).toBe(10);
    await b.close();
  });
});
