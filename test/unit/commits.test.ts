import { CommitTracker } from '../../pipelines/runtime/commits.ts';

const tp = (partition: number) => ({ topic: 'orders', partition });

describe('CommitTracker', () => {
  test('commits only after every sink acknowledged, in order per partition', () => {
    const t = new CommitTracker();
    const a = t.track(tp(0), 9n, ['ch', 'kafka']);
    const b = t.track(tp(0), 19n, ['ch', 'kafka']);
    t.acknowledge('ch', b);
    expect(t.takeCommittable()).toEqual([]);
    t.acknowledge('kafka', a);
    expect(t.takeCommittable()).toEqual([{ topic: 'orders', partition: 0, offset: '10' }]);
    t.acknowledge('kafka', b);
    expect(t.takeCommittable()).toEqual([{ topic: 'orders', partition: 0, offset: '20' }]);
    expect(t.inFlight).toBe(0);
  });

  test('a batch that reached no sink waits for the batches before it', () => {
    const t = new CommitTracker();
    const a = t.track(tp(1), 4n, ['ch']);
    t.track(tp(1), 8n, []);
    expect(t.takeCommittable()).toEqual([]);
    t.acknowledge('ch', a);
    expect(t.takeCommittable()).toEqual([{ topic: 'orders', partition: 1, offset: '9' }]);
  });

  test('partitions are independent, and a batch with no sink alone is committable at once', () => {
    const t = new CommitTracker();
    t.track(tp(0), 100n, ['ch']);
    t.track(tp(1), 50n, []);
    expect(t.takeCommittable()).toEqual([{ topic: 'orders', partition: 1, offset: '51' }]);
  });

  test('forgetting a revoked partition drops its pending batches from every sink queue', () => {
    const t = new CommitTracker();
    const a = t.track(tp(0), 1n, ['ch']);
    const b = t.track(tp(1), 1n, ['ch']);
    t.forget([tp(0)]);
    t.acknowledge('ch', Math.max(a, b));
    expect(t.takeCommittable()).toEqual([{ topic: 'orders', partition: 1, offset: '2' }]);
    expect(t.inFlight).toBe(0);
  });

  test('random acknowledgement orders never commit past an unacknowledged batch', () => {
    const violations: string[] = [];
    for (let run = 0; run < 200; run++) {
      const t = new CommitTracker();
      const sinks = ['a', 'b', 'c'];
      const seqs: Array<{ seq: number; last: bigint; sinks: string[] }> = [];
      for (let i = 0; i < 20; i++) {
        const used = sinks.filter(() => Math.random() < 0.6);
        seqs.push({ seq: t.track(tp(0), BigInt(i * 10 + 9), used), last: BigInt(i * 10 + 9), sinks: used });
      }
      const acked = new Map(sinks.map((s) => [s, 0]));
      let committed = -1n;
      for (let step = 0; step < 40; step++) {
        const s = sinks[Math.floor(Math.random() * sinks.length)]!;
        const upTo = Math.max(acked.get(s)!, seqs[Math.floor(Math.random() * seqs.length)]!.seq);
        acked.set(s, upTo);
        t.acknowledge(s, upTo);
        for (const c of t.takeCommittable()) committed = BigInt(c.offset);
        // Independent check: every batch below the committed offset must be acknowledged by all its sinks.
        for (const b of seqs) {
          if (b.last >= committed) continue;
          for (const sink of b.sinks) if (acked.get(sink)! < b.seq) violations.push(`run ${run}: ${b.last} by ${sink}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });
});
