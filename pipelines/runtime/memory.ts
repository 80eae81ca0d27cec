// The worker's memory budget: one figure, PIPELINES_MEMORY_BUDGET or else the container's memory limit (cgroup),
// from which the buffers the worker holds beside its heap are sized: what librdkafka prefetches per consumer, the
// rows a stage's sinks buffer before the source pauses, and what a stage's producer queues in librdkafka. Without
// either, the defaults (sized for a 2 GiB pod).
import { readFileSync } from 'node:fs';
import { settingError, shown } from '../settings.ts';

export interface MemoryBudget {
  bytes: number;
  from: 'PIPELINES_MEMORY_BUDGET' | 'cgroup';
}

export interface BufferBounds {
  /** librdkafka's prefetch of one consumer (`queued.max.messages.kbytes`), over all its partitions. */
  prefetchKbytes: number;
  /** One fetch response (`fetch.max.bytes`) and the messages kept queued per partition (`queued.min.messages`). */
  fetchMaxBytes: number;
  queuedMinMessages: number;
  /** Rows buffered across one stage's sinks above which its consumer pauses until a flush. */
  maxBufferedRows: number;
  /** What one stage's producer holds in librdkafka (`queue.buffering.max.kbytes`); a send beyond it waits. */
  produceKbytes: number;
}

/** What one consumer's librdkafka properties take from the bounds. */
export type FetchBounds = Pick<BufferBounds, 'prefetchKbytes' | 'fetchMaxBytes' | 'queuedMinMessages'>;

/** How long librdkafka waits to fetch again for a partition whose queue was over the bounds (its default: 1 s). */
const FETCH_QUEUE_BACKOFF_MS = 20;

/** The bounds as librdkafka consumer properties: the worker's source and the lookup tables take the same ones. */
export function fetchConfig(b: FetchBounds): Record<string, number> {
  return {
    'queued.max.messages.kbytes': b.prefetchKbytes,
    'fetch.max.bytes': b.fetchMaxBytes,
    'queued.min.messages': b.queuedMinMessages,
    // A consumer that drains its queue as fast as it fills (the batch consumer) meets the bounds all the time: with
    // a second's wait each time, a 256Mi budget read at 87k events/s instead of 183k (results/2026-12-07-batch.md).
    'fetch.queue.backoff.ms': FETCH_QUEUE_BACKOFF_MS,
  };
}

/** The worker's own figures and librdkafka's defaults: what a budget of about 1 GiB or more gives. */
export const DEFAULT_BOUNDS: BufferBounds = {
  prefetchKbytes: 16_384,
  fetchMaxBytes: 52_428_800,
  queuedMinMessages: 100_000,
  maxBufferedRows: 200_000,
  produceKbytes: 1_048_576, // librdkafka's default
};
/** What a prefetched message costs, rounded up (an order event is 150 to 300 B of Avro, plus its copy in JS). */
const MESSAGE_BYTES = 512;

/**
 * What one buffered row costs in the heap, rounded up: test/bench/row-bytes.ts measured 120 to 180 B for the
 * order-analytics rows and 324 B for an encoded order-enrichment message; the ClickHouse writer holds a second
 * copy (the insert body) of the rows in flight.
 */
export const ROW_BYTES = 512;
/**
 * Shares of the budget: prefetch (all consumers), sink buffers (all stages), producer queues (all stages). The rest
 * is heap, state and code. The producer's share bounds what librdkafka copies of the flushes handed to it (by
 * default up to 1 GiB); it did not lower the peak of a small pod much (results/2026-12-07-produce.md).
 */
const PREFETCH_SHARE = 0.1;
const BUFFER_SHARE = 0.2;
const PRODUCE_SHARE = 0.1;

const UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  ki: 1024,
  mi: 1024 ** 2,
  gi: 1024 ** 3,
};

/** `512Mi`, `1Gi`, `600M`, `1073741824`: bytes; undefined when it is none of these. */
export function parseBytes(raw: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]i?)?b?\s*$/i.exec(raw);
  if (!m) return undefined;
  const bytes = Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase()]!;
  return Number.isFinite(bytes) && bytes >= 1 ? Math.floor(bytes) : undefined;
}

/** The container's memory limit: cgroup v2's memory.max, or v1's limit (a near-2^63 figure there means none). */
export function cgroupLimit(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): number | undefined {
  for (const path of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    let raw: string;
    try {
      raw = read(path).trim();
    } catch {
      continue;
    }
    const n = Number(raw);
    if (raw === 'max' || !Number.isFinite(n) || n <= 0 || n >= 2 ** 60) return undefined;
    return n;
  }
  return undefined;
}

export function memoryBudget(
  env: NodeJS.ProcessEnv,
  limit: () => number | undefined = cgroupLimit,
): MemoryBudget | undefined {
  const raw = env.PIPELINES_MEMORY_BUDGET;
  if (raw !== undefined && raw.trim() !== '') {
    const bytes = parseBytes(raw);
    if (bytes === undefined || bytes < 64 * 1024 ** 2)
      throw settingError(
        'PIPELINES_MEMORY_BUDGET',
        `${shown(raw)} is not a size of at least 64Mi`,
        'the memory the worker may use, e.g. 512Mi or 2Gi (unset: the container limit)',
      );
    return { bytes, from: 'PIPELINES_MEMORY_BUDGET' };
  }
  const bytes = limit();
  return bytes === undefined ? undefined : { bytes, from: 'cgroup' };
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, Math.floor(x)));

/**
 * The bounds for `consumers` consumers (one per stage, one per lookup table) and `stages` stages within the budget;
 * never above the defaults, never below what keeps a stage moving. Smaller fetches cost speed: measured on the
 * ladder (test/bench/results/2026-12-07-memory.md), they are what brings the resident memory down.
 */
export function bufferBounds(budget: MemoryBudget | undefined, consumers: number, stages: number): BufferBounds {
  if (!budget) return DEFAULT_BOUNDS;
  const prefetch = (budget.bytes * PREFETCH_SHARE) / Math.max(1, consumers);
  return {
    prefetchKbytes: clamp(prefetch / 1024, 1024, DEFAULT_BOUNDS.prefetchKbytes),
    fetchMaxBytes: clamp(prefetch, 1024 ** 2, DEFAULT_BOUNDS.fetchMaxBytes),
    queuedMinMessages: clamp(prefetch / MESSAGE_BYTES, 1000, DEFAULT_BOUNDS.queuedMinMessages),
    maxBufferedRows: clamp(
      (budget.bytes * BUFFER_SHARE) / Math.max(1, stages) / ROW_BYTES,
      2000,
      DEFAULT_BOUNDS.maxBufferedRows,
    ),
    produceKbytes: clamp(
      (budget.bytes * PRODUCE_SHARE) / Math.max(1, stages) / 1024,
      4096,
      DEFAULT_BOUNDS.produceKbytes,
    ),
  };
}
