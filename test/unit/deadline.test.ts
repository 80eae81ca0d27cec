// Waiting with a bound: settled in time, settled by a rejection, or late (and then nothing else is waited for).
import { settledWithin, withTimeout } from '../../pipelines/deadline.ts';

const never = new Promise<never>(() => {});
const after = <T>(ms: number, v: T) => new Promise<T>((r) => setTimeout(() => r(v), ms));

describe('settledWithin', () => {
  it('says settled for a promise that resolves or rejects in time', async () => {
    await expect(settledWithin(after(5, 1), 1000)).resolves.toBe('settled');
    await expect(settledWithin(Promise.reject(new Error('x')), 1000)).resolves.toBe('settled');
  });

  it('says late, at the bound, for one that never settles', async () => {
    const started = Date.now();
    await expect(settledWithin(never, 50)).resolves.toBe('late');
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });
});

describe('withTimeout', () => {
  it('passes the value through, or rejects with the message made when the time is up', async () => {
    await expect(withTimeout(after(5, 'v'), 1000, 'unused')).resolves.toBe('v');
    let step = 'first';
    const late = withTimeout(never, 50, () => `stuck at ${step}`);
    step = 'second';
    await expect(late).rejects.toThrow('stuck at second');
  });
});
