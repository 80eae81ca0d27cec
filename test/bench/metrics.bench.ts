// Metrics cost: the events a worker emits for one 5,000-record batch (batch, 4 steps, outputs to 2 sinks, the
// end-to-end latency of every record at the sinks' acknowledgement, a dead letter now and then) plus, once a
// second at 150k records/s (every 30 batches), a flush cycle (inserts, flushes, commit) and, every 5 s, a
// Prometheus scrape of the registry. Same loop with metrics off (no-op events). Reports the overhead per batch
// and per record (median of the runs, with min–max) and its share of the 6.7 µs per record that 150k/s allows.
// Also: what observing each record's latency with prom-client's own Histogram would cost instead.
// Run: node test/bench/metrics.bench.ts [batches-per-run=600] [runs=7]
import { Histogram, Registry } from 'prom-client';
import { createMetrics, type PipelineEvents } from '../../pipelines/observe/metrics.ts';

const BATCHES = Number(process.argv[2] ?? 600);
const RUNS = Number(process.argv[3] ?? 7);
const RECORDS = 5000;
const RATE = 150_000;
const BATCHES_PER_SECOND = RATE / RECORDS; // 30
const SINKS = ['order_summary', 'revenue_by_segment_1m'];

const eventTimes = new Float64Array(RECORDS);
const outputs: Record<string, { length: number }> = Object.fromEntries([
  ['order_summary', { length: 4800 }],
  ['revenue_by_segment_1m', { length: 120 }],
]);

const noop = () => {};
const off: PipelineEvents = {
  batch: noop,
  watermark: noop,
  stepped: noop,
  late: noop,
  deadLetter: noop,
  acknowledged: noop,
  insertStarted: noop,
  inserted: noop,
  insertFailed: noop,
  table: noop,
  flushed: noop,
  committed: noop,
  retry: noop,
  rebalance: noop,
  paused: noop,
};

let sink = 0;
/** The loop: the same work with either events object; `scrape` runs every 5 s of simulated time. */
function loop(e: PipelineEvents, scrape: () => Promise<string> | undefined): Promise<number> {
  return (async () => {
    const t0 = performance.now();
    let offset = 0;
    for (let b = 0; b < BATCHES; b++) {
      const partition = b & 3;
      const now = Date.now();
      // What the worker has anyway: the records' timestamps (filled here so both loops pay the same).
      for (let i = 0; i < RECORDS; i++) eventTimes[i] = now - 300 - (i & 1023);
      offset += RECORDS;
      e.stepped({ step: 'decode', ms: 7, recordsIn: RECORDS, recordsOut: RECORDS });
      e.stepped({ step: 'filter', ms: 1, recordsIn: RECORDS, recordsOut: 4800 });
      e.stepped({ step: 'map', ms: 2, recordsIn: 4800, recordsOut: 4800 });
      e.stepped({ step: 'aggregate', ms: 3, recordsIn: 4800, recordsOut: 120 });
      if (b % 10 === 0) e.deadLetter({ step: 'decode', errorClass: 'DecodeError' });
      e.batch({
        topic: 'orders',
        partition,
        records: RECORDS,
        highWatermark: String(offset + 2000),
        lastOffset: String(offset - 1),
        lastTimestamp: now - 300,
        outputs,
        timestamps: eventTimes,
      });
      // Every record's latency at acknowledgement, for each sink it reached.
      for (const s of SINKS) e.acknowledged({ sink: s, topic: 'orders', partition, next: String(offset) });
      if (b % BATCHES_PER_SECOND === 0) {
        for (const s of SINKS) {
          e.insertStarted({ sink: s, rows: 150_000 });
          e.inserted({ sink: s, rows: 150_000, ms: 80 });
          e.flushed?.({ sink: s, ms: 85 });
        }
        e.committed?.({ partitions: 4, ms: 6 });
      }
      if (b % (BATCHES_PER_SECOND * 5) === 0) {
        const text = await scrape();
        if (text) sink += text.length;
      }
    }
    return performance.now() - t0;
  })();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[], unit: (x: number) => number, digits: number) =>
  `${unit(median(xs)).toFixed(digits)} (${unit(Math.min(...xs)).toFixed(digits)}–${unit(Math.max(...xs)).toFixed(digits)})`;

const metrics = createMetrics();
const on = metrics.topology('bench');
on.rebalance?.({ kind: 'assign', partitions: [0, 1, 2, 3].map((partition) => ({ topic: 'orders', partition })) });
const scrapeOn = () => metrics.registry.metrics();

// prom-client's Histogram, one observe per record: the alternative the FastHistogram replaces.
const plainRegistry = new Registry();
const plain = new Histogram({
  name: 'bench_latency_seconds',
  help: 'x',
  labelNames: ['topology', 'sink'],
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 900, 3600],
  registers: [plainRegistry],
});
const plainChild = plain.labels({ topology: 'bench', sink: 'order_summary' });
const perRecordPlain: PipelineEvents = {
  ...off,
  batch: (e) => {
    const ack = Date.now();
    const times = e.timestamps ?? [];
    for (let i = 0; i < times.length; i++) plainChild.observe((ack - times[i]!) / 1000);
  },
};

// Warm up both paths (JIT), then alternate runs so drift hits both alike.
await loop(off, () => undefined);
await loop(on, scrapeOn);
const offRuns: number[] = [];
const onRuns: number[] = [];
const plainRuns: number[] = [];
for (let r = 0; r < RUNS; r++) {
  offRuns.push(await loop(off, () => undefined));
  onRuns.push(await loop(on, scrapeOn));
  plainRuns.push(await loop(perRecordPlain, () => undefined));
}
const overhead = onRuns.map((t, i) => t - offRuns[i]!);
const plainOverhead = plainRuns.map((t, i) => t - offRuns[i]!);
const perBatchUs = (ms: number) => (ms * 1000) / BATCHES;
const perRecordUs = (ms: number) => (ms * 1000) / (BATCHES * RECORDS);
const share = (ms: number) => (perRecordUs(ms) / (1e6 / RATE)) * 100;

const t0 = performance.now();
const text = await metrics.registry.metrics();
const scrapeMs = performance.now() - t0;

console.log(`metrics cost, ${RUNS} runs of ${BATCHES} batches × ${RECORDS} records (median, min–max)`);
console.log(`  loop, metrics off           ${fmt(offRuns, perBatchUs, 1)} µs/batch`);
console.log(`  loop, metrics on            ${fmt(onRuns, perBatchUs, 1)} µs/batch`);
console.log(`  overhead                    ${fmt(overhead, perBatchUs, 1)} µs/batch`);
console.log(`  overhead                    ${fmt(overhead, perRecordUs, 4)} µs/record`);
console.log(`  share of 6.7 µs/record at 150k records/s: ${fmt(overhead, share, 2)} %`);
console.log(
  `  (per-record latency with prom-client's Histogram instead: ${fmt(plainOverhead, perRecordUs, 4)} µs/record, ${fmt(plainOverhead, share, 1)} %)`,
);
console.log(`  one scrape: ${scrapeMs.toFixed(2)} ms, ${text.length} bytes (every 5 s; included above)`);
if (sink < 0) console.log(sink);
