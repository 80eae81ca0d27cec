// A synthetic, in-process workload that drives the metrics through the same events a worker emits, at a
// realistic pace (batches of ~1-2.5k records on 4 partitions every 50 ms, flushes and commits every second,
// ClickHouse inserts, a lookup table catching up, a rebalance, a few retries, dead letters and late events).
// Three topologies: `healthy` behaves; `noisy` dead-letters 3% of its records; `stuck` has a growing lag,
// consumes nothing and has a table that never catches up. The Prometheus test swaps `healthy` for a real
// worker under load by replacing startHealthy (same Metrics, same topology name).
import type { Metrics, TopologyMetrics } from '../../pipelines/observe/metrics.ts';

export interface Workload {
  healthy: string;
  noisy: string;
  stuck: string;
  stop(): Promise<void>;
}

const SINKS = ['order_summary', 'revenue_by_segment_1m'];
const STEPS: Array<[string, number]> = [
  ['decode', 1],
  ['filter', 0.97],
  ['map', 1],
  ['aggregate', 0.05],
];

/** A healthy topology; returns its stop function. */
export function startHealthy(t: TopologyMetrics, topic: string, o: { deadLetterShare?: number } = {}): () => void {
  const partitions = [0, 1, 2, 3];
  const offsets = partitions.map(() => 0);
  const pending = new Map<string, Float64Array[]>(SINKS.map((s) => [s, []]));
  let ticks = 0;
  let garbage: unknown[] = [];
  t.rebalance?.({ kind: 'assign', partitions: partitions.map((partition) => ({ topic, partition })) });
  t.table({ topic: 'customers', rows: 0, behind: 5000 });

  const batchTimer = setInterval(() => {
    ticks++;
    const partition = partitions[ticks % partitions.length]!;
    const records = 1000 + Math.floor(Math.random() * 1500);
    const now = Date.now();
    offsets[partition]! += records;
    const eventTimes = new Float64Array(records);
    for (let i = 0; i < records; i++) eventTimes[i] = now - 200 - Math.random() * 2500;
    let n = records;
    for (const [step, share] of STEPS) {
      const out = Math.round(n * share);
      t.stepped({ step, ms: 0.2 + (n / 1000) * (0.5 + Math.random()), recordsIn: n, recordsOut: out });
      n = step === 'aggregate' ? n : out;
    }
    const dead = Math.round(records * (o.deadLetterShare ?? 0.0005) * (0.5 + Math.random()));
    if (dead > 0)
      t.deadLetter({ step: Math.random() < 0.5 ? 'decode' : 'map', errorClass: 'DecodeError', records: dead });
    if (ticks % 7 === 1) t.late({ step: 'aggregate', records: 1 + Math.floor(Math.random() * 5) });
    t.batch({
      topic,
      partition,
      records,
      highWatermark: String(offsets[partition]! + Math.floor(Math.random() * 2000)),
      lastOffset: String(offsets[partition]! - 1),
      lastTimestamp: now - 200 - Math.random() * 500,
      outputs: Object.fromEntries([
        ['order_summary', { length: n }],
        ['revenue_by_segment_1m', { length: Math.round(records * 0.05) }],
      ]),
    });
    for (const s of SINKS) pending.get(s)!.push(eventTimes);
    garbage.push(new Array(records).fill({ order: 'x'.repeat(40) })); // what decoding allocates
  }, 50);

  let flushes = 0;
  const flushTimer = setInterval(async () => {
    flushes++;
    garbage = [];
    const started = Date.now();
    await Promise.all(
      SINKS.map(async (sink, i) => {
        const batches = pending.get(sink)!.splice(0);
        const rows = batches.reduce((a, b) => a + b.length, 0);
        const bytes = rows * (i === 0 ? 160 : 60);
        t.insertStarted({ sink, bytes });
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 40));
        if (i === 0 && flushes % 3 === 1) {
          t.insertFailed({ sink, bytes, ms: 30, code: 'CH_TIMEOUT' });
          t.retry?.({ what: `sink ${sink}`, attempt: 1, error: new Error('timeout') });
          t.insertStarted({ sink, bytes });
        }
        t.inserted({ sink, rows, bytes, ms: Date.now() - started });
        t.flushed?.({ sink, ms: Date.now() - started });
        const ack = Date.now();
        for (const b of batches) t.acknowledged({ sink, eventTimes: b, ackMs: ack });
      }),
    );
    t.committed?.({ partitions: partitions.length, ms: 2 + Math.random() * 10 });
    if (flushes % 4 === 1) t.retry?.({ what: 'registry', attempt: 1, error: new Error('503') });
  }, 1000);

  let tableRows = 0;
  const tableTimer = setInterval(() => {
    tableRows = Math.min(5000, tableRows + 1500);
    t.table({ topic: 'customers', rows: tableRows, behind: 5000 - tableRows });
  }, 500);

  // A cooperative rebalance after a few seconds: partition 3 goes and comes back.
  const rebalance = setTimeout(() => {
    t.rebalance?.({ kind: 'revoke', partitions: [{ topic, partition: 3 }] });
    t.paused?.(true);
    t.rebalance?.({ kind: 'assign', partitions: [{ topic, partition: 3 }] });
    t.paused?.(false);
  }, 3000);

  return () => {
    clearInterval(batchTimer);
    clearInterval(flushTimer);
    clearInterval(tableTimer);
    clearTimeout(rebalance);
  };
}

/** A topology that gets nowhere: partitions assigned, the end of its topic moves on, nothing is consumed. */
function startStuck(t: TopologyMetrics, topic: string): () => void {
  t.rebalance?.({ kind: 'assign', partitions: [0, 1].map((partition) => ({ topic, partition })) });
  t.batch({ topic, partition: 0, records: 100, highWatermark: '20000', lastOffset: '99', lastTimestamp: Date.now() });
  t.batch({ topic, partition: 1, records: 100, highWatermark: '20000', lastOffset: '99', lastTimestamp: Date.now() });
  t.table({ topic: 'customers', rows: 10, behind: 100_000 });
  let end = 20_000;
  const timer = setInterval(() => {
    end += 2500;
    for (const partition of [0, 1]) t.watermark({ topic, partition, highWatermark: String(end) });
  }, 500);
  return () => clearInterval(timer);
}

export function startSyntheticWorkload(metrics: Metrics, prefix: string): Workload {
  const names = { healthy: `${prefix}-orders`, noisy: `${prefix}-noisy`, stuck: `${prefix}-stuck` };
  const stops = [
    startHealthy(metrics.topology(names.healthy), 'orders'),
    startHealthy(metrics.topology(names.noisy), 'orders', { deadLetterShare: 0.03 }),
    startStuck(metrics.topology(names.stuck), 'orders'),
  ];
  return {
    ...names,
    async stop() {
      for (const s of stops) s();
    },
  };
}
