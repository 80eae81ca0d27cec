import { CommitTracker } from '../../pipelines/runtime/commit/tracker.ts';

const tp = (partition: number) => ({ topic: 'orders', partition });

describe('CommitTracker', () => {
  test('commits only after every sink acknowledged, in order per partition', () => {
    const t = new CommitTracker();
    t.track(tp(0), 9n, ['ch', 'kafka']);
    t.track(tp(0), 19n, ['ch', 'kafka']);
    t.acknowledge('ch', tp(0), 20n);
    expect(t.takeCommittable()).toEqual([]);
    t.acknowledge('kafka', tp(0), 10n);
    expect(t.takeCommittable()).toEqual([{ topic: 'orders', partition: 0, offset: '10' }]);
    t.acknowledge('kafka', tp(0), 20n);
    expect(t.takeCommittable()).toEqual([{ topic: 'orders', partition: 0, offset: '20' }]);
    expect(t.inFlight).toBe(0);
  });

  test('a batch that reached no sink waits for the batches before it', () => {
    const t = new CommitTracker();
    t.track(tp(1), 4n, ['ch']);
    t.track(tp(1), 8n, []);
    expect(t.takeCommittable()).toEqual([]);
    t.acknowledge('ch', tp(1), 5n);
    expect(t.takeCommittable()).toEqual([{ topic: 'orders', partition: 1, offset: '9' }]);
  });

  test('partitions are independent, and a batch with no sink alone is committable at once', () => {
    const t = new CommitTracker();
    t.track(tp(0), 100n, ['ch']);
    t.track(tp(1), 50n, []);
    expect(t.takeCommittable()).toEqual([{ topic: 'orders', partition: 1, offset: '51' }]);
    t.acknowledge('ch', tp(1), 51n); // another partition's ack changes nothing here
    expect(t.takeCommittable()).toEqual([]);
  });

  test('an acknowledgement that arrived before the batch was tracked still counts', () => {
    const t = new CommitTracker();
    t.track(tp(0), 9n, ['ch']);
    t.acknowledge('ch', tp(0), 30n);
    t.track(tp(0), 19n, ['ch']);
    expect(t.takeCommittable()).toEqual([{ topic: 'orders', partition: 0, offset: '20' }]);
  });

  test('forgetting a revoked partition drops its pending batches', () => {
    const t = new CommitTracker();
    t.track(tp(0), 1n, ['ch']);
    t.track(tp(1), 1n, ['ch']);
    t.forget([tp(0)]);
    t.acknowledge('ch', tp(0), 2n);
    t.acknowledge('ch', tp(1), 2n);
    expect(t.takeCommittable()).toEqual([{ topic: 'orders', partition: 1, offset: '2' }]);
    expect(t.inFlight).toBe(0);
  });

  test('random acknowledgement orders never commit past an unacknowledged batch', () => {
    const violations: string[] = [];
    for (let run = 0; run < 300; run++) {
      const t = new CommitTracker();
      const sinks = ['a', 'b', 'c'];
      const batches: Array<{ last: bigint; sinks: string[] }> = [];
      const acked = new Map(sinks.map((s) => [s, 0n]));
      let committed = 0n;
      for (let i = 0; i < 20; i++) {
        const used = sinks.filter(() => Math.random() < 0.6);
        const last = BigInt(i * 10 + 9);
        batches.push({ last, sinks: used });
        t.track(tp(0), last, used);
        // Each sink acknowledges some prefix of what it was given, never more.
        for (const s of sinks) {
          if (Math.random() < 0.5) continue;
          const given = batches.filter((b) => b.sinks.includes(s));
          const upTo = given[Math.floor(Math.random() * given.length)];
          if (!upTo || upTo.last + 1n <= acked.get(s)!) continue;
          acked.set(s, upTo.last + 1n);
          t.acknowledge(s, tp(0), upTo.last + 1n);
        }
        for (const c of t.takeCommittable()) {
          if (BigInt(c.offset) < committed) violations.push(`run ${run}: commit went back`);
          committed = BigInt(c.offset);
        }
        // Independent check: each batch before the committed offset is acknowledged by every sink it used.
        for (const b of batches) {
          if (b.last >= committed) continue;
          for (const s of b.sinks)
            if (acked.get(s)! <= b.last) violations.push(`run ${run}: ${b.last} not acked by ${s}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });
});

describe('settledUpTo: what a state changelog may claim as applied', () => {
  test('every sink but the changelog has acknowledged every batch up to the offset', () => {
    const t = new CommitTracker();
    t.track(tp(0), 9n, ['ch', 'state']);
    t.track(tp(0), 19n, ['ch', 'kafka', 'state']);
    t.track(tp(0), 29n, ['state']);
    expect(t.settledUpTo(tp(0), 9n, 'state')).toBe(false);
    t.acknowledge('ch', tp(0), 10n);
    expect(t.settledUpTo(tp(0), 9n, 'state')).toBe(true);
    // Batch 19 still waits for ClickHouse and Kafka; batch 29 needs no other sink but comes after it.
    expect(t.settledUpTo(tp(0), 19n, 'state')).toBe(false);
    expect(t.settledUpTo(tp(0), 29n, 'state')).toBe(false);
    t.acknowledge('kafka', tp(0), 20n);
    expect(t.settledUpTo(tp(0), 19n, 'state')).toBe(false);
    t.acknowledge('ch', tp(0), 20n);
    expect(t.settledUpTo(tp(0), 29n, 'state')).toBe(true);
    // Another partition, and one given away, settle nothing.
    expect(t.settledUpTo(tp(1), 5n, 'state')).toBe(false);
    t.forget([tp(0)]);
    expect(t.settledUpTo(tp(0), 9n, 'state')).toBe(false);
  });
});
