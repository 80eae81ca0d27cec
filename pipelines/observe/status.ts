// `pipelines status` and the live line of `pipelines run`: reads a worker's /metrics twice, a short
// interval apart, and /readyz, and sums it up on one screen (throughput, lag, health per topology).

import { PipelinesError } from '../errors.ts';
import { textTable } from './text-table.ts';

/** One sample of the Prometheus text format. */
export interface ExpositionSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the Prometheus text exposition format (comments skipped). */
export function parseExposition(text: string): ExpositionSample[] {
  const out: ExpositionSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line.trim());
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[2]) {
      for (const l of m[2].matchAll(LABEL)) {
        labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
      }
    }
    const v = m[3]!;
    out.push({ name: m[1]!, labels, value: v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v) });
  }
  return out;
}

export interface TopologyStatus {
  topology: string;
  recordsIn: number;
  /** Records per second over the interval (undefined from a single read). */
  inPerSecond?: number;
  outPerSecond?: number;
  lagRecords: number;
  /** Worst partition. */
  lagSeconds: number;
  partitions: number;
  deadLetters: number;
  retries: number;
  paused: boolean;
  ready: boolean;
}

export interface WorkerStatus {
  url: string;
  ready: boolean;
  reasons: string[];
  topologies: TopologyStatus[];
  heapUsedBytes?: number;
  eventLoopP99Seconds?: number;
  /** CPU share of one core over the interval. */
  cpu?: number;
}

const sum = (samples: ExpositionSample[], name: string, topology: string) =>
  samples.filter((s) => s.name === name && s.labels.topology === topology).reduce((a, s) => a + s.value, 0);
const max = (samples: ExpositionSample[], name: string, topology: string) =>
  samples.filter((s) => s.name === name && s.labels.topology === topology).reduce((a, s) => Math.max(a, s.value), 0);
const single = (samples: ExpositionSample[], name: string) => samples.find((s) => s.name === name)?.value;

/** Builds the status from one or two /metrics reads (`seconds` apart) and the /readyz answer. */
export function summarize(
  url: string,
  after: ExpositionSample[],
  readyz: { ready: boolean; reasons: string[] },
  before?: { samples: ExpositionSample[]; seconds: number },
): WorkerStatus {
  const names = new Set<string>();
  for (const s of after) if (s.name.startsWith('pipelines_') && s.labels.topology) names.add(s.labels.topology);
  const rate = (name: string, topology: string) =>
    before && before.seconds > 0
      ? Math.max(0, (sum(after, name, topology) - sum(before.samples, name, topology)) / before.seconds)
      : undefined;
  const topologies = [...names].sort().map((topology): TopologyStatus => {
    const t: TopologyStatus = {
      topology,
      recordsIn: sum(after, 'pipelines_records_in_total', topology),
      lagRecords: sum(after, 'pipelines_consumer_lag_records', topology),
      lagSeconds: max(after, 'pipelines_consumer_lag_seconds', topology),
      partitions: sum(after, 'pipelines_assigned_partitions', topology),
      deadLetters: sum(after, 'pipelines_dead_letters_total', topology),
      retries: sum(after, 'pipelines_retries_total', topology),
      paused: sum(after, 'pipelines_consumer_paused', topology) > 0,
      ready: sum(after, 'pipelines_ready', topology) > 0,
    };
    const i = rate('pipelines_records_in_total', topology);
    const o = rate('pipelines_records_out_total', topology);
    if (i !== undefined) t.inPerSecond = i;
    if (o !== undefined) t.outPerSecond = o;
    return t;
  });
  const status: WorkerStatus = { url, ready: readyz.ready, reasons: readyz.reasons, topologies };
  const heap = single(after, 'pipelines_nodejs_heap_size_used_bytes');
  const loop = single(after, 'pipelines_nodejs_eventloop_lag_p99_seconds');
  if (heap !== undefined) status.heapUsedBytes = heap;
  if (loop !== undefined) status.eventLoopP99Seconds = loop;
  const cpuAfter = single(after, 'pipelines_process_cpu_seconds_total');
  const cpuBefore = before && single(before.samples, 'pipelines_process_cpu_seconds_total');
  if (before && cpuAfter !== undefined && cpuBefore !== undefined && before.seconds > 0) {
    status.cpu = (cpuAfter - cpuBefore) / before.seconds;
  }
  return status;
}

const num = (n: number | undefined) =>
  n === undefined ? '-' : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0);
const secs = (s: number) =>
  s < 1 ? `${(s * 1000).toFixed(0)}ms` : s < 120 ? `${s.toFixed(1)}s` : `${(s / 60).toFixed(1)}m`;

/** The one-screen summary. */
export function renderStatus(s: WorkerStatus): string {
  const head = ['topology', 'in/s', 'out/s', 'lag', 'lag age', 'parts', 'dead', 'retries', 'state'];
  const rows = s.topologies.map((t) => [
    t.topology,
    num(t.inPerSecond),
    num(t.outPerSecond),
    num(t.lagRecords),
    secs(t.lagSeconds),
    String(t.partitions),
    num(t.deadLetters),
    num(t.retries),
    t.ready ? (t.paused ? 'paused' : 'ready') : 'NOT READY',
  ]);
  const lines = [`worker ${s.url}: ${s.ready ? 'ready' : 'NOT READY'}`];
  if (rows.length > 0) lines.push(...textTable(head, rows));
  else lines.push('no topology reported yet');
  for (const r of s.reasons) lines.push(`  - ${r}`);
  const rt: string[] = [];
  if (s.cpu !== undefined) rt.push(`cpu ${(s.cpu * 100).toFixed(0)}%`);
  if (s.heapUsedBytes !== undefined) rt.push(`heap ${(s.heapUsedBytes / 2 ** 20).toFixed(0)} MiB`);
  if (s.eventLoopP99Seconds !== undefined) rt.push(`event loop p99 ${secs(s.eventLoopP99Seconds)}`);
  if (rt.length > 0) lines.push(`runtime: ${rt.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

/** A single line for a terminal while `pipelines run` is on it (rewritten in place by the caller). */
export function statusLine(s: WorkerStatus): string {
  const parts = s.topologies.map(
    (t) =>
      `${t.topology} ${num(t.inPerSecond)}/s lag ${num(t.lagRecords)} (${secs(t.lagSeconds)}) dead ${num(t.deadLetters)}`,
  );
  return `${s.ready ? 'ready' : 'NOT READY'} | ${parts.join(' | ') || 'waiting for partitions'}`;
}

export interface StatusOptions {
  /** The worker's observe address, default http://127.0.0.1:19100. */
  url?: string;
  /** Time between the two /metrics reads, for rates; 0 reads once. Default 1000 ms. */
  intervalMs?: number;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/** Reads a worker's /metrics (twice) and /readyz. Throws a user-facing error when it does not answer. */
export async function readStatus(o: StatusOptions = {}): Promise<WorkerStatus> {
  const url = (o.url ?? 'http://127.0.0.1:19100').replace(/\/+$/, '');
  const f = o.fetch ?? fetch;
  const get = async (path: string) => {
    try {
      return await f(`${url}${path}`, { signal: AbortSignal.timeout(o.timeoutMs ?? 3000) });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why = e.cause?.code ?? e.cause?.message ?? e.message;
      throw new PipelinesError(
        'WORKER_UNREACHABLE',
        `no worker answers at ${url} (${why}): is \`pipelines run\` up there, with --metrics on that address?`,
      );
    }
  };
  const scrape = async () => parseExposition(await (await get('/metrics')).text());
  const interval = o.intervalMs ?? 1000;
  let before: { samples: ExpositionSample[]; seconds: number } | undefined;
  if (interval > 0) {
    const t0 = performance.now();
    const first = await scrape();
    await new Promise((r) => setTimeout(r, interval));
    before = { samples: first, seconds: (performance.now() - t0) / 1000 };
  }
  const after = await scrape();
  const r = await get('/readyz');
  const readyz = (await r.json()) as { ready: boolean; reasons: string[] };
  return summarize(url, after, readyz, before);
}

/** `pipelines status`: the rendered summary (the CLI prints it; exit code 0 when ready, 1 when not). */
export async function status(o: StatusOptions = {}): Promise<{ text: string; ready: boolean }> {
  const s = await readStatus(o);
  return { text: renderStatus(s), ready: s.ready };
}
