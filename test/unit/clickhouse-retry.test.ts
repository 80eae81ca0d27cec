// withRetry: retries what is retriable with bounded, jittered exponential backoff, and counts it.

import { ClickHouseSinkError } from '../../pipelines/sinks/clickhouse/errors.ts';
import { newRetryStats, withRetry } from '../../pipelines/sinks/clickhouse/retry.ts';

const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
const noSleep = async () => {};

test('retries retriable errors until success, and counts', async () => {
  const stats = newRetryStats();
  const delays: number[] = [];
  let calls = 0;
  const out = await withRetry(
    async () => {
      calls++;
      if (calls < 4) throw refused();
      return 'ok';
    },
    {
      stats,
      sleep: noSleep,
      random: () => 1,
      onRetry: (_e, _a, d) => delays.push(d),
      policy: { initialMs: 10, maxMs: 50 },
    },
  );
  expect(out).toBe('ok');
  expect(calls).toBe(4);
  expect(delays).toEqual([10, 20, 40]);
  expect(stats).toMatchObject({ calls: 1, retries: 3, failures: 0, recovered: 1, retrying: 0 });
  expect(stats.errorsByCode).toEqual({ CH_UNAVAILABLE: 3 });
});

test('does not retry a non-retriable error', async () => {
  const stats = newRetryStats();
  let calls = 0;
  const err = Object.assign(new Error('No such column zz in table t'), { code: '16', type: 'NO_SUCH_COLUMN_IN_TABLE' });
  await expect(
    withRetry(
      async () => {
        calls++;
        throw err;
      },
      { stats, sleep: noSleep },
      { table: 't' },
    ),
  ).rejects.toMatchObject({ code: 'CH_UNKNOWN_COLUMN', retriable: false, table: 't', column: 'zz' });
  expect(calls).toBe(1);
  expect(stats).toMatchObject({ calls: 1, retries: 0, failures: 1 });
});

test('stops after maxAttempts with the last error', async () => {
  let calls = 0;
  const p = withRetry(
    async () => {
      calls++;
      throw refused();
    },
    { policy: { initialMs: 100, maxMs: 10_000, maxAttempts: 3 }, sleep: noSleep },
  );
  await expect(p).rejects.toBeInstanceOf(ClickHouseSinkError);
  expect(calls).toBe(3);
});

test('an abort stops the retries and cuts the sleep short', async () => {
  const ac = new AbortController();
  const stats = newRetryStats();
  let calls = 0;
  const p = withRetry(
    async () => {
      calls++;
      throw refused();
    },
    {
      policy: { initialMs: 60_000, maxMs: 60_000 },
      random: () => 1,
      signal: ac.signal,
      stats,
    },
  );
  await new Promise((r) => setTimeout(r, 20));
  expect(stats.retrying).toBe(1);
  ac.abort();
  await expect(p).rejects.toMatchObject({ code: 'CH_UNAVAILABLE' });
  expect(calls).toBe(2);
  expect(stats.retrying).toBe(0);
});
