// SinkWriter against a recording fake client: when it flushes, what it inserts (range first,
// then one insert per table and partition with its token), acks, backpressure, replay, retries.

import type { ClickHouseClient } from '@clickhouse/client';
import type { ClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import { SinkWriter, type SinkWriterOptions } from '../../pipelines/sinks/clickhouse/writer.ts';

interface Call {
  table: string;
  rows: unknown[];
  token: string | undefined;
}

function fakeClickHouse(fail: (call: Call, n: number) => Error | undefined = () => undefined) {
  const calls: Call[] = [];
  let n = 0;
  const client = {
    insert: async (p: { table: string; values: unknown[]; clickhouse_settings?: Record<string, unknown> }) => {
      const call = {
        table: p.table,
        rows: p.values,
        token: p.clickhouse_settings?.insert_deduplication_token as string | undefined,
      };
      const err = fail(call, n++);
      if (err) throw err;
      calls.push(call);
      return {};
    },
  } as unknown as ClickHouseClient;
  const ch: ClickHouse = { client, kind: 'server', description: 'fake', close: async () => {} };
  return { ch, calls };
}

/** A fake whose inserts all wait until `release()`: a flush held in flight. */
function gatedClickHouse() {
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const fake = fakeClickHouse();
  const insert = fake.ch.client.insert.bind(fake.ch.client);
  (fake.ch.client as unknown as { insert: unknown }).insert = async (p: never) => {
    await gate;
    return insert(p);
  };
  return { ...fake, release };
}

const opts = (o: Partial<SinkWriterOptions> = {}): SinkWriterOptions => ({
  topology: 'topo',
  sink: 'sink',
  tables: [
    { table: 'detail', columns: ['id', 'amount'] },
    { table: 'totals', columns: ['k', 'n'] },
  ],
  format: 'JSONEachRow',
  maxRows: 10,
  maxDelayMs: 50,
  retry: { policy: { initialMs: 1, maxMs: 2 } },
  ...o,
});
const rows = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ id: from + i, amount: 1 }));
const range = (partition: number, first: number, last: number) => ({ topic: 'orders', partition, first, last });

test('flushes on the row count: range record first, then one insert per table and partition, each with its token', async () => {
  const { ch, calls } = fakeClickHouse();
  const acks: unknown[] = [];
  const w = new SinkWriter(ch, opts({ maxRows: 11, onAck: (a) => acks.push(a) }));
  await w.write(range(0, 0, 3), { detail: rows(0, 4), totals: [{ k: 'a', n: 4 }] });
  await w.write(range(1, 10, 14), { detail: rows(10, 5) });
  expect(calls).toHaveLength(0);
  await w.write(range(0, 4, 4), { detail: rows(4, 1) }); // 11 rows: the count is reached
  await w.flush();
  expect(calls.map((c) => [c.table, c.rows.length, c.token])).toEqual([
    ['_pipelines_offsets', 2, undefined],
    ['detail', 5, 'topo/sink/detail/orders/0/0-4'],
    ['totals', 1, 'topo/sink/totals/orders/0/0-4'],
    ['detail', 5, 'topo/sink/detail/orders/1/10-14'],
  ]);
  expect(calls[0]!.rows).toEqual([
    { topology: 'topo', sink: 'sink', topic: 'orders', partition: 0, first_offset: '0', last_offset: '4', claim: '0' },
    {
      topology: 'topo',
      sink: 'sink',
      topic: 'orders',
      partition: 1,
      first_offset: '10',
      last_offset: '14',
      claim: '0',
    },
  ]);
  expect(acks).toEqual([
    { topic: 'orders', partition: 0, next: '5' },
    { topic: 'orders', partition: 1, next: '15' },
  ]);
  expect(w.stats).toMatchObject({ flushes: 1, inserts: 3, rowsWritten: 11, bufferedRows: 0, inflightRows: 0 });
  await w.close();
});

test('flushes on time', async () => {
  const { ch, calls } = fakeClickHouse();
  const w = new SinkWriter(ch, opts({ maxDelayMs: 30 }));
  await w.write(range(0, 0, 0), { detail: rows(0, 1) });
  expect(calls).toHaveLength(0);
  await new Promise((r) => setTimeout(r, 80));
  expect(calls.map((c) => c.table)).toEqual(['_pipelines_offsets', 'detail']);
  await w.close();
});

test('a batch whose rows were all filtered out is still acknowledged', async () => {
  const { ch, calls } = fakeClickHouse();
  const acks: unknown[] = [];
  const w = new SinkWriter(ch, opts({ onAck: (a) => acks.push(a) }));
  await w.write(range(2, 7, 9), {});
  await w.flush();
  expect(calls.map((c) => c.table)).toEqual(['_pipelines_offsets']);
  expect(acks).toEqual([{ topic: 'orders', partition: 2, next: '10' }]);
  await w.close();
});

test('retriable failures are retried with the same token; stats show them', async () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  const { ch, calls } = fakeClickHouse((c, n) => (c.table === 'detail' && n < 4 ? refused : undefined));
  const w = new SinkWriter(ch, opts());
  await w.write(range(0, 0, 1), { detail: rows(0, 2) });
  await w.flush();
  expect(calls.map((c) => [c.table, c.token])).toEqual([
    ['_pipelines_offsets', undefined],
    ['detail', 'topo/sink/detail/orders/0/0-1'],
  ]);
  expect(w.stats.retry).toMatchObject({ retries: 3, recovered: 1, failures: 0, retrying: 0 });
  await w.close();
});

test('a non-retriable failure is sticky: later writes and flushes reject with it, nothing is acked', async () => {
  const bad = Object.assign(new Error('No such column amount in table detail'), {
    code: '16',
    type: 'NO_SUCH_COLUMN_IN_TABLE',
  });
  const { ch } = fakeClickHouse((c) => (c.table === 'detail' ? bad : undefined));
  const acks: unknown[] = [];
  const w = new SinkWriter(ch, opts({ onAck: (a) => acks.push(a) }));
  await w.write(range(0, 0, 1), { detail: rows(0, 2) });
  await expect(w.flush()).rejects.toMatchObject({ code: 'CH_UNKNOWN_COLUMN', table: 'detail', column: 'amount' });
  await expect(w.write(range(0, 2, 2), { detail: rows(2, 1) })).rejects.toMatchObject({ code: 'CH_UNKNOWN_COLUMN' });
  expect(acks).toEqual([]);
  await w.close();
});

test('backpressure: write waits while buffered plus in-flight rows exceed the bound', async () => {
  const { ch, release } = gatedClickHouse();
  const w = new SinkWriter(ch, opts({ maxRows: 10, maxBufferedRows: 15 }));
  await w.write(range(0, 0, 9), { detail: rows(0, 10) }); // starts a flush that hangs
  expect(w.stats.inflightRows).toBe(10);
  let done = false;
  const p = w.write(range(0, 10, 19), { detail: rows(10, 10) }).then(() => {
    done = true;
  });
  await new Promise((r) => setTimeout(r, 20));
  expect(done).toBe(false);
  expect(w.stats.waitingWrites).toBe(1);
  release();
  await p;
  expect(done).toBe(true);
  await w.close();
});

test('replay: rows are held until the recorded range is complete, then flushed with the recorded token', async () => {
  const { ch, calls } = fakeClickHouse();
  const w = new SinkWriter(ch, opts({ maxRows: 2 }));
  w.expectReplay([{ topic: 'orders', partition: 0, first: '100', last: '105', seekTo: '100', next: '106' }]);
  // The first record after the seek may be later than the recorded first (e.g. compaction).
  await w.write(range(0, 101, 103), { detail: rows(101, 3) });
  await new Promise((r) => setTimeout(r, 80)); // neither the row count nor the timer flushes it
  expect(calls).toHaveLength(0);
  await expect(w.write(range(0, 104, 107), { detail: rows(104, 4) })).rejects.toMatchObject({
    code: 'CH_REPLAY_BOUNDARY',
  });
  await w.write(range(0, 104, 105), { detail: rows(104, 2) });
  await w.flush();
  expect(calls.map((c) => [c.table, c.rows.length, c.token])).toEqual([
    ['_pipelines_offsets', 1, undefined],
    ['detail', 5, 'topo/sink/detail/orders/0/100-105'],
  ]);
  // After the replayed batch, boundaries are free again.
  await w.write(range(0, 106, 106), { detail: rows(106, 1) });
  await w.flush();
  expect(calls.at(-1)!.token).toBe('topo/sink/detail/orders/0/106-106');
  await w.close();
});

test('replay: writes after the boundary wait for the next flush (one range per partition per flush)', async () => {
  const { ch, calls, release } = gatedClickHouse();
  const w = new SinkWriter(ch, opts({ maxRows: 1000 }));
  w.expectReplay([{ topic: 'orders', partition: 0, first: '0', last: '4', seekTo: '0', next: '5' }]);
  await w.write(range(1, 0, 0), { detail: rows(0, 1) });
  await w.write(range(0, 0, 4), { detail: rows(0, 5) }); // completes the replay: flush starts, hangs
  await w.write(range(0, 5, 9), { detail: rows(5, 5) }); // after the boundary
  release();
  await w.flush();
  await w.flush();
  expect(
    calls.map((c) => [
      c.table,
      c.token ?? c.rows.map((r) => (r as { partition: number; first_offset: string }).first_offset),
    ]),
  ).toEqual([
    ['_pipelines_offsets', ['0', '0']],
    ['detail', 'topo/sink/detail/orders/0/0-4'],
    ['detail', 'topo/sink/detail/orders/1/0-0'],
    ['_pipelines_offsets', ['5']],
    ['detail', 'topo/sink/detail/orders/0/5-9'],
  ]);
  await w.close();
});

test('replay: a consumer that starts past the recorded range (committed beyond it) does not wait for it', async () => {
  // Seen on the real stack: the committed offsets did not come in time at assignment, so the worker kept a
  // range it should have skipped; the partition's rows were then held back for good and the worker stalled.
  const { ch, calls } = fakeClickHouse();
  const acks: Array<{ partition: number; next: string }> = [];
  const w = new SinkWriter(ch, opts({ maxRows: 1000, onAck: (a) => acks.push(a) }));
  w.expectReplay([{ topic: 'orders', partition: 0, first: '100', last: '105', seekTo: '100', next: '106' }]);
  await w.write(range(0, 106, 110), { detail: rows(106, 5) });
  await w.flush();
  expect(calls.map((c) => [c.table, c.token ?? null])).toEqual([
    ['_pipelines_offsets', null],
    ['detail', 'topo/sink/detail/orders/0/106-110'],
  ]);
  expect(acks).toEqual([{ topic: 'orders', partition: 0, next: '111' }]);
  await w.close();
});

test('replay: when the last records of the range give this sink no rows, what it holds is sealed as the range', async () => {
  // Seen on the real stack: the sink got rows for 100-102 only (103-105 were other event types); the next write
  // started at 106. Flushed as one range 100-108 under a new token, it counted 100-102 twice (the first run had
  // written 100-105).
  const { ch, calls } = fakeClickHouse();
  const acks: Array<{ partition: number; next: string }> = [];
  const w = new SinkWriter(ch, opts({ maxRows: 1000, onAck: (a) => acks.push(a) }));
  w.expectReplay([{ topic: 'orders', partition: 0, first: '100', last: '105', seekTo: '100', next: '106' }]);
  await w.write(range(0, 100, 102), { detail: rows(100, 3) });
  await w.write(range(0, 106, 108), { detail: rows(106, 3) });
  await w.flush();
  await w.flush();
  expect(calls.map((c) => [c.table, c.token ?? c.rows.map((r) => (r as { last_offset: string }).last_offset)])).toEqual(
    [
      ['_pipelines_offsets', ['105']],
      ['detail', 'topo/sink/detail/orders/0/100-105'],
      ['_pipelines_offsets', ['108']],
      ['detail', 'topo/sink/detail/orders/0/106-108'],
    ],
  );
  expect(acks.map((a) => a.next)).toEqual(['106', '109']);
  await w.close();
});

test('replay: a completed range and the writes after it never share a flush', async () => {
  // Recorded together, the later range would be the partition's last in the offsets log: a crash before the
  // replay's insert landed would then leave the replay behind for good.
  const { ch, calls, release } = gatedClickHouse();
  const w = new SinkWriter(ch, opts({ maxRows: 1000 }));
  w.expectReplay([{ topic: 'orders', partition: 0, first: '0', last: '4', seekTo: '0', next: '5' }]);
  await w.write(range(1, 0, 0), { detail: rows(0, 1) });
  const inflight = w.flush(); // partition 1 alone, held until release()
  await w.write(range(0, 0, 4), { detail: rows(0, 5) }); // the replay completes while that flush is in flight
  await w.write(range(0, 5, 9), { detail: rows(5, 5) });
  release();
  await inflight;
  await w.flush();
  await w.flush();
  const logged = calls
    .filter((c) => c.table === '_pipelines_offsets')
    .map((c) =>
      c.rows.map((r) => `${(r as { partition: number }).partition}:${(r as { first_offset: string }).first_offset}`),
    );
  expect(logged).toEqual([['1:0'], ['0:0'], ['0:5']]);
  await w.close();
});

test('a replayed partition must start at or after the recorded first offset', async () => {
  const { ch } = fakeClickHouse();
  const w = new SinkWriter(ch, opts());
  w.expectReplay([{ topic: 'orders', partition: 0, first: '100', last: '105', seekTo: '100', next: '106' }]);
  await expect(w.write(range(0, 90, 95), { detail: rows(90, 6) })).rejects.toMatchObject({
    code: 'CH_REPLAY_BOUNDARY',
  });
  await w.close();
});

test('ranges of a partition must move forward; forget() resets a partition given away', async () => {
  const { ch, calls } = fakeClickHouse();
  const w = new SinkWriter(ch, opts());
  await w.write(range(0, 0, 4), { detail: rows(0, 5) });
  await expect(w.write(range(0, 3, 6), { detail: rows(3, 4) })).rejects.toThrow(/does not follow offset 4/);
  w.forget('orders', 0);
  expect(w.stats.bufferedRows).toBe(0);
  await w.write(range(0, 0, 1), { detail: rows(0, 2) });
  await w.flush();
  expect(calls.at(-1)!.token).toBe('topo/sink/detail/orders/0/0-1');
  await w.close();
});

test('an unknown table is a programming error', async () => {
  const { ch } = fakeClickHouse();
  const w = new SinkWriter(ch, opts());
  await expect(w.write(range(0, 0, 0), { nope: [{}] })).rejects.toThrow(/"nope" is not one of this sink's tables/);
  await w.close();
});
