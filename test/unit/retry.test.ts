// The one retry policy: full jitter under a doubling ceiling, retriable errors only, bounded or until stopped.
import { PipelinesError } from '../../pipelines/errors.ts';
import { backoffDelay, isRetriable, retrying } from '../../pipelines/retry.ts';

const policy = { initialMs: 100, maxMs: 1000 };
const transient = () => new PipelinesError('TEST_DOWN', 'down', { retriable: true });
const noSleep = async () => {};

test('backoff: the ceiling doubles from initialMs up to maxMs; the delay is jittered under it, never below initial/2', () => {
  expect([1, 2, 3, 4, 5, 10, 100].map((a) => backoffDelay(policy, a, () => 0.999999))).toEqual([
    100, 200, 400, 800, 1000, 1000, 1000,
  ]);
  expect(backoffDelay(policy, 3, () => 0.5)).toBe(200);
  expect(backoffDelay(policy, 3, () => 0)).toBe(50);
});

test('retries what is retriable until it passes, reporting each retry with its delay', async () => {
  const seen: Array<[number, number]> = [];
  let calls = 0;
  const out = await retrying(
    policy,
    async () => {
      if (++calls < 4) throw transient();
      return 'ok';
    },
    { sleep: noSleep, random: () => 0.999999, onRetry: (_e, attempt, delay) => seen.push([attempt, delay]) },
  );
  expect(out).toBe('ok');
  expect(seen).toEqual([
    [1, 100],
    [2, 200],
    [3, 400],
  ]);
});

test('a failure that is not retriable is thrown at once', async () => {
  let calls = 0;
  const err = new PipelinesError('TEST_BAD', 'bad');
  await expect(
    retrying(
      policy,
      async () => {
        calls++;
        throw err;
      },
      { sleep: noSleep },
    ),
  ).rejects.toBe(err);
  expect(calls).toBe(1);
});

test('maxAttempts counts every attempt, the first included; stopped() ends the retries with the last error', async () => {
  let calls = 0;
  const failing = async () => {
    calls++;
    throw transient();
  };
  await expect(retrying({ ...policy, maxAttempts: 3 }, failing, { sleep: noSleep })).rejects.toMatchObject({
    code: 'TEST_DOWN',
  });
  expect(calls).toBe(3);
  calls = 0;
  await expect(retrying(policy, failing, { sleep: noSleep, stopped: () => calls >= 5 })).rejects.toMatchObject({
    code: 'TEST_DOWN',
  });
  expect(calls).toBe(5);
});

test('classify turns what was thrown into the error the policy reads', async () => {
  let calls = 0;
  await retrying(
    policy,
    async () => {
      if (++calls < 2) throw Object.assign(new Error('ECONNREFUSED'), { code: 'ECONNREFUSED' });
    },
    { sleep: noSleep, classify: (raw) => new PipelinesError('TEST_DOWN', String(raw), { retriable: true }) },
  );
  expect(calls).toBe(2);
  expect(isRetriable(new Error('plain'))).toBe(false);
  expect(isRetriable(transient())).toBe(true);
});
