// Customer skew of the generated orders: Zipf by inverse CDF, and without it the very stream of before.
import { createHash } from 'node:crypto';
import { orderLifecycleStream, orderPlacedStream } from '../../pipelines/loadgen/orders.ts';
import { zipfRanks } from '../../pipelines/loadgen/zipf.ts';

const sha = (x: unknown) => createHash('sha256').update(JSON.stringify(x)).digest('hex');

describe('skew 0 or absent', () => {
  it('gives the stream of before, byte for byte (hashes taken before skew existed)', () => {
    expect(sha([...orderLifecycleStream(2000, { seed: 42 })])).toBe(
      'fc52a93b90f5bbaae550653399bdb031b55f3a7013a8d4a0d6b25cb6359e9f2e',
    );
    expect(sha([...orderPlacedStream(2000, { seed: 7, customers: 40 })])).toBe(
      'fe578aff54c013249045006d7000b6aca81a4f44affb8bda2d47787a1e2abe9c',
    );
  });

  it('skew 0 is the same as no skew', () => {
    expect([...orderLifecycleStream(1500, { seed: 3, skew: 0 })]).toEqual([...orderLifecycleStream(1500, { seed: 3 })]);
  });
});

describe('skew above 0', () => {
  const orders = 10_000;
  const perCustomer = (skew?: number) => {
    const n = new Map<string, number>();
    for (const e of orderPlacedStream(orders, { seed: 5, ...(skew === undefined ? {} : { skew }) }))
      n.set(e.data.customerId, (n.get(e.data.customerId) ?? 0) + 1);
    return n;
  };

  it('gives the top customer far more than the uniform share, near 1/H(500, s)', () => {
    const skewed = perCustomer(1.1);
    const top = [...skewed].sort((a, b) => b[1] - a[1])[0]!;
    expect(top[0]).toBe('C00000');
    let harmonic = 0;
    for (let k = 1; k <= 500; k++) harmonic += k ** -1.1;
    expect(top[1] / orders).toBeGreaterThan((1 / harmonic) * 0.9);
    expect(top[1] / orders).toBeLessThan((1 / harmonic) * 1.1);
    expect(top[1]).toBeGreaterThan(20 * (orders / 500));
    expect(Math.max(...perCustomer().values())).toBeLessThan(3 * (orders / 500));
  });

  it('changes only the customer: the draws per order stay the same', () => {
    const plain = [...orderLifecycleStream(2000, { seed: 8 })];
    const skewed = [...orderLifecycleStream(2000, { seed: 8, skew: 1.1 })];
    const withoutCustomer = (events: typeof plain) =>
      events.map((e) => (e.eventType === 'OrderPlaced' ? { ...e, data: { ...e.data, customerId: undefined } } : e));
    expect(withoutCustomer(skewed)).toEqual(withoutCustomer(plain));
    expect(skewed).not.toEqual(plain);
  });

  it('is seeded like the rest: the same seed, the same stream', () => {
    expect([...orderLifecycleStream(500, { seed: 2, skew: 1 })]).toEqual([
      ...orderLifecycleStream(500, { seed: 2, skew: 1 }),
    ]);
  });
});

describe('zipfRanks', () => {
  it('maps [0, 1) onto every rank, the first ones widest', () => {
    const rank = zipfRanks(4, 1);
    // Weights 1, 1/2, 1/3, 1/4 of 25/12: rank 0 up to 0.48, rank 1 to 0.72, rank 2 to 0.88.
    expect([0, 0.47, 0.49, 0.71, 0.73, 0.87, 0.89, 0.999999].map(rank)).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
    expect(zipfRanks(1, 2)(0.7)).toBe(0);
  });

  it('with exponent 0 is uniform: floor(u * n)', () => {
    const rank = zipfRanks(7, 0);
    for (let u = 0; u < 1; u += 0.013) expect(rank(u)).toBe(Math.floor(u * 7));
  });

  it('refuses a count or an exponent it cannot use', () => {
    expect(() => zipfRanks(0, 1)).toThrow(RangeError);
    expect(() => zipfRanks(5, -1)).toThrow(RangeError);
    expect(() => zipfRanks(5, Number.NaN)).toThrow(RangeError);
  });
});
