// The metrics catalogue: every metric a worker exports is declared here, once (name, type, labels, help,
// buckets), and fed by one object per topology that implements the worker's events plus per-batch helpers.
// Labels stay bounded: topology, step, sink, topic, partition, reason, and a saga's event, state, action (its
// steps' names) and outcome; never a key, an order or an offset.
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { WorkerEvents } from './events.ts';
import { FastHistogram, type HistogramChild, type KeptHistogram } from './histogram.ts';

type Kind = 'counter' | 'gauge' | 'histogram';

export interface MetricSpec<K extends Kind = Kind, L extends string = string> {
  readonly type: K;
  readonly name: string;
  readonly labels: readonly L[];
  readonly help: string;
  readonly buckets?: readonly number[];
}

const spec = <K extends Kind, L extends string>(
  type: K,
  name: string,
  labels: readonly L[],
  help: string,
  buckets?: readonly number[],
): MetricSpec<K, L> => (buckets ? { type, name, labels, help, buckets } : { type, name, labels, help });

const BATCH_RECORDS = [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000];
const STEP_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const IO_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** A saga's reply times: the saga step keeps them by these bounds (steps/saga/machine.ts); a test holds them equal. */
const REPLY_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const LATENCY_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 900, 3600];

/** Every metric the worker declares. grafana/README.md lists each of them (a test checks it against this list). */
export const METRICS = {
  recordsIn: spec(
    'counter',
    'pipelines_records_in_total',
    ['topology', 'topic', 'partition'],
    'Records consumed from the source topic.',
  ),
  recordsOut: spec(
    'counter',
    'pipelines_records_out_total',
    ['topology', 'topic', 'partition', 'sink'],
    'Rows handed to a sink (table or output topic), by the source topic and partition they came from.',
  ),
  batchSize: spec(
    'histogram',
    'pipelines_batch_size_records',
    ['topology'],
    'Records per consumed batch (one partition).',
    BATCH_RECORDS,
  ),
  consumerLagRecords: spec(
    'gauge',
    'pipelines_consumer_lag_records',
    ['topology', 'topic', 'partition'],
    'Records not yet processed: high watermark - last processed offset - 1.',
  ),
  consumerLagSeconds: spec(
    'gauge',
    'pipelines_consumer_lag_seconds',
    ['topology', 'topic', 'partition'],
    'While records wait: age of the last processed record (now - its Kafka timestamp), computed at scrape time; 0 when caught up.',
  ),
  consumerPaused: spec(
    'gauge',
    'pipelines_consumer_paused',
    ['topology'],
    '1 while the consumer is paused because the sinks are behind (backpressure).',
  ),
  assignedPartitions: spec(
    'gauge',
    'pipelines_assigned_partitions',
    ['topology'],
    'Partitions currently assigned to this worker.',
  ),
  rebalances: spec(
    'counter',
    'pipelines_rebalances_total',
    ['topology', 'reason'],
    'Rebalance callbacks, reason = assign or revoke.',
  ),
  stalls: spec(
    'counter',
    'pipelines_worker_stalls_total',
    ['topology'],
    'Times the liveness guard saw partitions with records waiting and no progress for its bound (/healthz 503).',
  ),
  commits: spec(
    'counter',
    'pipelines_commits_total',
    ['topology'],
    'Offset commits (each after every sink acknowledged).',
  ),
  commitDuration: spec(
    'histogram',
    'pipelines_commit_duration_seconds',
    ['topology'],
    'Time to commit offsets to Kafka, retries included.',
    IO_SECONDS,
  ),
  stepDuration: spec(
    'histogram',
    'pipelines_step_duration_seconds',
    ['topology', 'step'],
    'Time one step spent on one batch (decode counts as step "decode").',
    STEP_SECONDS,
  ),
  stepRecordsIn: spec('counter', 'pipelines_step_records_in_total', ['topology', 'step'], 'Records entering a step.'),
  stepRecordsOut: spec(
    'counter',
    'pipelines_step_records_out_total',
    ['topology', 'step'],
    'Records leaving a step (filtered ones do not).',
  ),
  endToEndLatency: spec(
    'histogram',
    'pipelines_end_to_end_latency_seconds',
    ['topology', 'sink'],
    'Per source record: from its Kafka timestamp (producer create time) to the acknowledgement of the sink that made its batch durable.',
    LATENCY_SECONDS,
  ),
  lateEvents: spec(
    'counter',
    'pipelines_late_events_total',
    ['topology', 'step'],
    'Records too late for their window (behind the watermark by more than the allowed lateness) that a windowed step dead-lettered (error class LateEvent); with onLate: drop they are not counted.',
  ),
  deadLetters: spec(
    'counter',
    'pipelines_dead_letters_total',
    ['topology', 'step', 'reason'],
    'Records sent to the dead-letter topic, by failing step and error class.',
  ),
  retries: spec(
    'counter',
    'pipelines_retries_total',
    ['topology', 'reason', 'sink'],
    'Retried failures, reason = registry, commit, transaction or sink (then sink names which).',
  ),
  sinkFlushDuration: spec(
    'histogram',
    'pipelines_sink_flush_duration_seconds',
    ['topology', 'sink'],
    'Time for a sink to make its buffer durable, retries included.',
    IO_SECONDS,
  ),
  sinkUp: spec(
    'gauge',
    'pipelines_sink_up',
    ['topology', 'sink'],
    '1 when the last write to the sink succeeded, 0 while it is failing.',
  ),
  clickhouseRows: spec(
    'counter',
    'pipelines_clickhouse_rows_total',
    ['topology', 'sink'],
    'Rows inserted into ClickHouse (acknowledged inserts).',
  ),
  clickhouseInsertDuration: spec(
    'histogram',
    'pipelines_clickhouse_insert_duration_seconds',
    ['topology', 'sink'],
    'Time of one ClickHouse insert request (one attempt), the offsets-log inserts of the sink included.',
    IO_SECONDS,
  ),
  clickhouseInsertErrors: spec(
    'counter',
    'pipelines_clickhouse_insert_errors_total',
    ['topology', 'sink', 'reason'],
    'Failed ClickHouse insert attempts, by error code (CH_TIMEOUT, CH_UNREACHABLE, ...).',
  ),
  clickhouseInFlight: spec(
    'gauge',
    'pipelines_clickhouse_in_flight_rows',
    ['topology', 'sink'],
    'Rows of ClickHouse insert requests sent and not yet answered.',
  ),
  tableRows: spec(
    'gauge',
    'pipelines_table_rows',
    ['topology', 'topic'],
    'Rows held by a lookup table built from a compacted topic.',
  ),
  tableCatchupRecords: spec(
    'gauge',
    'pipelines_table_catchup_records',
    ['topology', 'topic'],
    'Records a lookup table still has to read to reach the end of its topic.',
  ),
  tableCaughtUp: spec(
    'gauge',
    'pipelines_table_caught_up',
    ['topology', 'topic'],
    '1 once a lookup table has read its topic to the end at least once.',
  ),
  tableRowsSkipped: spec(
    'counter',
    'pipelines_table_rows_skipped_total',
    ['topology', 'topic'],
    "Records of a lookup table's topic that could not be read (undecodable, no key): skipped, the table keeps its last good row.",
  ),
  memoryBudget: spec(
    'gauge',
    'pipelines_memory_budget_bytes',
    ['topology'],
    'The memory budget the buffers are sized from (PIPELINES_MEMORY_BUDGET, else the container limit); 0 when none.',
  ),
  prefetchBound: spec(
    'gauge',
    'pipelines_prefetch_bound_bytes',
    ['topology'],
    'What librdkafka may prefetch per consumer (queued.max.messages.kbytes), sized from the memory budget.',
  ),
  sinkBufferBound: spec(
    'gauge',
    'pipelines_sink_buffer_bound_rows',
    ['topology'],
    "Rows a stage's sinks may buffer before its source pauses, sized from the memory budget.",
  ),
  sinkBufferedRows: spec(
    'gauge',
    'pipelines_sink_buffered_rows',
    ['topology', 'sink'],
    'Rows a sink holds until its next flush (read at scrape time).',
  ),
  sagaEvents: spec(
    'counter',
    'pipelines_saga_events_total',
    ['topology', 'step', 'event'],
    'Saga events since the worker started: started, completed, compensated, failed (to compensate), timedOut, ' +
      'retried, compensations (sent), duplicates (replies ignored), late (successes undone), unknown (dead-lettered).',
  ),
  sagaInstances: spec(
    'gauge',
    'pipelines_saga_instances',
    ['topology', 'step', 'state'],
    'Saga instances this worker holds, by state: running:<step>, compensating:<step>, or an end state (kept for `retain`).',
  ),
  sagaReplySeconds: spec(
    'histogram',
    'pipelines_saga_reply_duration_seconds',
    ['topology', 'step', 'action', 'outcome'],
    "Saga step latency: from a command's latest attempt (or a compensation, action `<name>:undo`) to the reply " +
      'the saga awaited, by outcome (success, failure). Buckets 5 ms to 300 s.',
    REPLY_SECONDS,
  ),
  ready: spec(
    'gauge',
    'pipelines_ready',
    ['topology'],
    '1 when the worker is ready (partitions assigned, tables caught up, sinks reachable), as /readyz says.',
  ),
} as const;

/**
 * Node runtime metrics from prom-client's collectDefaultMetrics (prefix `pipelines_`); the ones the
 * dashboards use, listed here so that the catalogue and the dashboard check know them.
 */
export const RUNTIME_METRICS: readonly MetricSpec[] = [
  spec('gauge', 'pipelines_nodejs_eventloop_lag_p99_seconds', [], 'Event loop delay, 99th percentile.'),
  spec('gauge', 'pipelines_nodejs_eventloop_lag_mean_seconds', [], 'Event loop delay, mean.'),
  spec('gauge', 'pipelines_nodejs_heap_size_used_bytes', [], 'V8 heap used.'),
  spec('gauge', 'pipelines_nodejs_heap_size_total_bytes', [], 'V8 heap size.'),
  spec('histogram', 'pipelines_nodejs_gc_duration_seconds', ['kind'], 'Garbage collection pauses, by GC kind.'),
  spec('counter', 'pipelines_process_cpu_seconds_total', [], 'CPU time (user + system).'),
  spec('gauge', 'pipelines_process_resident_memory_bytes', [], 'Resident memory.'),
];

/** The whole catalogue, declared metrics then runtime ones. */
export const CATALOGUE: readonly MetricSpec[] = [...Object.values(METRICS), ...RUNTIME_METRICS];

export interface Readiness {
  ready: boolean;
  /** Why not ready (empty when ready). */
  reasons: string[];
}

/**
 * Events beyond the worker's own that the metrics listen to. All per batch or per request, never per
 * record (except `acknowledged`, which takes a batch's event times at once).
 */
export interface PipelineEvents extends WorkerEvents {
  /** One call per dead-lettered record, or one per batch with `records`. */
  deadLetter(e: { step: string; errorClass: string; records?: number }): void;
  batch(e: {
    topic: string;
    partition: number;
    records: number;
    highWatermark: string;
    lastOffset: string;
    /** Kafka timestamp (ms) of the batch's last record: gives the lag in seconds. */
    lastTimestamp?: number;
    /** The batch's outputs by sink id (the processor's result): records out per sink. */
    outputs?: Readonly<Record<string, { readonly length: number }>>;
    /** Kafka timestamps (ms) of the batch's records: end-to-end latency once a sink acknowledges them. */
    timestamps?: ArrayLike<number>;
  }): void;
  /**
   * Partition end seen between batches (polled): lag while nothing is fetched. `position` is the group's next
   * offset, used while this worker has processed nothing of the partition yet.
   */
  watermark(e: { topic: string; partition: number; highWatermark: string; position?: number }): void;
  /** One step over one batch. */
  stepped(e: { step: string; ms: number; recordsIn: number; recordsOut: number }): void;
  late(e: { step: string; records: number }): void;
  /** A sink made a partition durable up to `next`: the records of the batches before it get their latency. */
  acknowledged(e: { sink: string; topic: string; partition: number; next: string }): void;
  /** One ClickHouse insert request (one attempt); `rows` are the sink's rows (0 for its offsets log). */
  insertStarted(e: { sink: string; rows: number }): void;
  inserted(e: { sink: string; rows: number; ms: number }): void;
  insertFailed(e: { sink: string; rows: number; ms: number; code: string }): void;
  /** A lookup table's size and how far it is from its topic's end. */
  table(e: { topic: string; rows: number; behind: number; skipped: number }): void;
}

/** One topology's view of the metrics: pass it as the worker's `events`. */
export interface TopologyMetrics extends PipelineEvents {
  readonly topology: string;
  readiness(): Readiness;
  /** Where the steps' own counts are read at scrape time (the plan's `observed`). */
  observeSteps(source: () => StepObservations): void;
  observed(): StepObservations;
  /** The memory budget, the bounds sized from it, and where the sinks' buffers are read at scrape time. */
  memory(e: {
    budgetBytes: number;
    prefetchKbytes: number;
    maxBufferedRows: number;
    buffered: () => Array<{ sink: string; rows: number }>;
  }): void;
  buffered(): Array<{ sink: string; rows: number }>;
}

export interface Metrics {
  readonly registry: Registry;
  /** The events object for a topology (one per name, created on first use). */
  topology(name: string): TopologyMetrics;
  /** Readiness over every topology of this process. */
  readiness(): Readiness;
}

export type StepObservations = Array<{
  step: string;
  counts: Record<string, number>;
  held: Record<string, number>;
  replies?: readonly KeptHistogram[];
}>;

interface PartitionState {
  labels: { topology: string; topic: string; partition: string };
  inc: (n: number) => void;
  lastOffset: number;
  /** The partition's end as last known (from a batch or a watermark poll); -1 unknown. */
  highWatermark: number;
  lag: number;
  lastTimestamp: number | undefined;
  out: Map<string, (n: number) => void>;
  /** Per sink: batches waiting for its acknowledgement (last offset, record timestamps), and the last ack. */
  pending: Map<string, { batches: Array<{ last: number; times: ArrayLike<number> }>; acked: number }>;
}

let runtimeRegistry: Registry | undefined;

/**
 * The Node runtime metrics, collected once per process however many workers it runs: each collection
 * holds a GC observer and an event-loop histogram that are never released.
 */
function runtimeMetrics(): Registry {
  if (!runtimeRegistry) {
    runtimeRegistry = new Registry();
    collectDefaultMetrics({ register: runtimeRegistry, prefix: 'pipelines_' });
  }
  return runtimeRegistry;
}

/**
 * Declares every metric on a registry (a fresh one unless given) and, unless `runtime: false`, the Node
 * runtime metrics. `now` is the clock used for latencies and lag in seconds.
 */
export function createMetrics(o: { registry?: Registry; runtime?: boolean; now?: () => number } = {}): Metrics {
  const registry = o.registry ?? new Registry();
  const now = o.now ?? Date.now;
  const registers = [registry];
  const handles = new Map<string, Handle>();
  const counter = <L extends string>(s: MetricSpec<'counter', L>) =>
    new Counter<L>({ name: s.name, help: s.help, labelNames: s.labels, registers });
  const gauge = <L extends string>(s: MetricSpec<'gauge', L>, collect?: (g: Gauge<L>) => void) =>
    new Gauge<L>({
      name: s.name,
      help: s.help,
      labelNames: s.labels,
      registers,
      ...(collect
        ? {
            collect(this: Gauge<L>) {
              collect(this);
            },
          }
        : {}),
    });
  const histogram = <L extends string>(s: MetricSpec<'histogram', L>) =>
    new FastHistogram<L>({ name: s.name, help: s.help, labelNames: s.labels, buckets: s.buckets ?? [], registry });

  const M = METRICS;
  const m = {
    recordsIn: counter(M.recordsIn),
    recordsOut: counter(M.recordsOut),
    batchSize: histogram(M.batchSize),
    lagRecords: gauge(M.consumerLagRecords),
    lagSeconds: gauge(M.consumerLagSeconds, (g) => {
      const t = now();
      for (const h of handles.values()) {
        for (const p of h.partitions.values()) {
          const s = p.lag > 0 && p.lastTimestamp !== undefined ? Math.max(0, (t - p.lastTimestamp) / 1000) : 0;
          g.set(p.labels, s);
        }
      }
    }),
    paused: gauge(M.consumerPaused),
    assigned: gauge(M.assignedPartitions),
    rebalances: counter(M.rebalances),
    stalls: counter(M.stalls),
    commits: counter(M.commits),
    commitDuration: histogram(M.commitDuration),
    stepDuration: histogram(M.stepDuration),
    stepIn: counter(M.stepRecordsIn),
    stepOut: counter(M.stepRecordsOut),
    e2e: histogram(M.endToEndLatency),
    late: counter(M.lateEvents),
    deadLetters: counter(M.deadLetters),
    retries: counter(M.retries),
    flush: histogram(M.sinkFlushDuration),
    sinkUp: gauge(M.sinkUp),
    chRows: counter(M.clickhouseRows),
    chInsert: histogram(M.clickhouseInsertDuration),
    chErrors: counter(M.clickhouseInsertErrors),
    chInFlight: gauge(M.clickhouseInFlight),
    tableRows: gauge(M.tableRows),
    tableCatchup: gauge(M.tableCatchupRecords),
    tableCaughtUp: gauge(M.tableCaughtUp),
    tableSkipped: counter(M.tableRowsSkipped),
    memoryBudget: gauge(M.memoryBudget),
    prefetchBound: gauge(M.prefetchBound),
    sinkBufferBound: gauge(M.sinkBufferBound),
    sinkBuffered: gauge(M.sinkBufferedRows, (g) => {
      g.reset();
      for (const h of handles.values())
        for (const b of h.buffered()) g.set({ topology: h.topology, sink: b.sink }, b.rows);
    }),
    sagaEvents: new Counter({
      name: M.sagaEvents.name,
      help: M.sagaEvents.help,
      labelNames: M.sagaEvents.labels,
      registers,
      // The step keeps the counts: set at scrape time (a Counter may only grow, and these only grow).
      collect(this: Counter<'topology' | 'step' | 'event'>) {
        this.reset();
        for (const h of handles.values())
          for (const s of h.observed())
            for (const [event, n] of Object.entries(s.counts))
              this.inc({ topology: h.topology, step: s.step, event }, n);
      },
    }),
    sagaInstances: gauge(M.sagaInstances, (g) => {
      g.reset();
      for (const h of handles.values())
        for (const s of h.observed())
          for (const [state, n] of Object.entries(s.held)) g.set({ topology: h.topology, step: s.step, state }, n);
    }),
    sagaReplies: new FastHistogram({
      name: M.sagaReplySeconds.name,
      help: M.sagaReplySeconds.help,
      labelNames: M.sagaReplySeconds.labels,
      buckets: M.sagaReplySeconds.buckets ?? [],
      registry,
      // The saga step keeps its histograms (its own bounds); they are read at scrape time, as its counts are.
      *collect() {
        for (const h of handles.values())
          for (const s of h.observed())
            for (const r of s.replies ?? [])
              yield { ...r, labels: { topology: h.topology, step: s.step, ...r.labels } };
      },
    }),
    ready: gauge(M.ready, (g) => {
      for (const h of handles.values()) g.set({ topology: h.topology }, h.readiness().ready ? 1 : 0);
    }),
  };
  if (o.runtime !== false) {
    const runtime = runtimeMetrics();
    for (const { name } of runtime.getMetricsAsArray()) {
      const metric = runtime.getSingleMetric(name);
      if (metric) registry.registerMetric(metric);
    }
  }

  type Handle = TopologyMetrics & { partitions: Map<string, PartitionState> };

  function createHandle(topology: string): Handle {
    const t = { topology };
    const partitions = new Map<string, PartitionState>();
    const batchSize = m.batchSize.labels(t);
    const commitDuration = m.commitDuration.labels(t);
    const steps = new Map<string, { duration: HistogramChild; inc: (i: number, o: number) => void }>();
    const sinkHist = new Map<string, { flush: HistogramChild; insert: HistogramChild; e2e: HistogramChild }>();
    const sinksDown = new Map<string, string>();
    const tables = new Map<string, { behind: number; caughtUp: boolean; skipped: number }>();
    const inFlight = new Map<string, number>();
    const addInFlight = (id: string, rows: number) => {
      const v = Math.max(0, (inFlight.get(id) ?? 0) + rows);
      inFlight.set(id, v);
      m.chInFlight.set({ topology, sink: id }, v);
    };
    let assigned = 0;
    let observed: () => StepObservations = () => [];
    let buffered: () => Array<{ sink: string; rows: number }> = () => [];
    m.assigned.set(t, 0);
    m.paused.set(t, 0);

    const partition = (topic: string, p: number): PartitionState => {
      const key = `${topic}\u0000${p}`;
      let s = partitions.get(key);
      if (!s) {
        const labels = { topology, topic, partition: String(p) };
        const child = m.recordsIn.labels(labels);
        // Exported from assignment on, at 0: a partition stuck before its first batch shows no progress.
        child.inc(0);
        s = {
          labels,
          inc: (n) => child.inc(n),
          lastOffset: Number.NEGATIVE_INFINITY,
          highWatermark: -1,
          lag: 0,
          lastTimestamp: undefined,
          out: new Map(),
          pending: new Map(),
        };
        partitions.set(key, s);
      }
      return s;
    };
    const sink = (id: string) => {
      let s = sinkHist.get(id);
      if (!s) {
        const l = { topology, sink: id };
        s = { flush: m.flush.labels(l), insert: m.chInsert.labels(l), e2e: m.e2e.labels(l) };
        sinkHist.set(id, s);
      }
      return s;
    };
    const setSinkUp = (id: string, up: boolean, why?: string) => {
      m.sinkUp.set({ topology, sink: id }, up ? 1 : 0);
      if (up) sinksDown.delete(id);
      else sinksDown.set(id, why ?? 'failing');
    };
    /** A batch's record timestamps wait for the sink's acknowledgement (observed at once if it came first). */
    const pend = (s: PartitionState, id: string, times: ArrayLike<number>) => {
      let p = s.pending.get(id);
      if (!p) {
        p = { batches: [], acked: -1 };
        s.pending.set(id, p);
      }
      if (s.lastOffset < p.acked) {
        const ack = now();
        sink(id).e2e.observeMany(times, (ts) => (ack - ts) / 1000);
      } else p.batches.push({ last: s.lastOffset, times });
    };
    const setLag = (s: PartitionState, highWatermark: number) => {
      // The client answers -1001 when it does not know the end yet: keep the last known one.
      if (highWatermark >= 0) s.highWatermark = Math.max(s.highWatermark, highWatermark);
      const unknown = s.lastOffset === Number.NEGATIVE_INFINITY || s.highWatermark < 0;
      s.lag = unknown ? 0 : Math.max(0, s.highWatermark - s.lastOffset - 1);
      m.lagRecords.set(s.labels, s.lag);
    };

    return {
      topology,
      partitions,
      batch(e) {
        const s = partition(e.topic, e.partition);
        s.inc(e.records);
        batchSize.observe(e.records);
        s.lastOffset = Number(e.lastOffset);
        if (e.lastTimestamp !== undefined) s.lastTimestamp = e.lastTimestamp;
        setLag(s, Number(e.highWatermark));
        if (e.outputs) {
          for (const [id, rows] of Object.entries(e.outputs)) {
            if (rows.length === 0) continue;
            if (e.timestamps) pend(s, id, e.timestamps);
            let inc = s.out.get(id);
            if (!inc) {
              const child = m.recordsOut.labels({ ...s.labels, sink: id });
              inc = (n) => child.inc(n);
              s.out.set(id, inc);
            }
            inc(rows.length);
          }
        }
      },
      watermark(e) {
        // Only partitions this worker holds: the lag of the others is their owner's.
        const s = partitions.get(`${e.topic}\u0000${e.partition}`);
        if (!s) return;
        if (s.lastOffset === Number.NEGATIVE_INFINITY && e.position !== undefined && e.position >= 0) {
          s.lastOffset = e.position - 1;
        }
        setLag(s, Number(e.highWatermark));
      },
      deadLetter(e) {
        m.deadLetters.inc({ topology, step: e.step, reason: e.errorClass || 'Error' }, e.records ?? 1);
        if (e.errorClass === 'LateEvent') m.late.inc({ topology, step: e.step }, e.records ?? 1);
      },
      flushed(e) {
        sink(e.sink).flush.observe(e.ms / 1000);
        setSinkUp(e.sink, true);
      },
      retry(e) {
        const [reason = 'unknown', ...rest] = e.what.split(' ');
        const id = rest.join(' ');
        m.retries.inc({ topology, reason, sink: id });
        if (reason === 'sink' && id) setSinkUp(id, false, e.error.message);
      },
      stalled() {
        m.stalls.inc(t);
      },
      committed(e) {
        m.commits.inc(t);
        commitDuration.observe(e.ms / 1000);
      },
      rebalance(e) {
        m.rebalances.inc({ topology, reason: e.kind });
        if (e.kind === 'assign') {
          for (const p of e.partitions) partition(p.topic, p.partition);
        } else {
          for (const p of e.partitions) {
            const key = `${p.topic}\u0000${p.partition}`;
            const s = partitions.get(key);
            if (!s) continue;
            partitions.delete(key);
            m.lagRecords.remove(s.labels);
            m.lagSeconds.remove(s.labels);
          }
        }
        assigned = partitions.size;
        m.assigned.set(t, assigned);
      },
      paused(p) {
        m.paused.set(t, p ? 1 : 0);
      },
      stepped(e) {
        let s = steps.get(e.step);
        if (!s) {
          const l = { topology, step: e.step };
          const i = m.stepIn.labels(l);
          const o = m.stepOut.labels(l);
          s = {
            duration: m.stepDuration.labels(l),
            inc: (a, b) => {
              i.inc(a);
              o.inc(b);
            },
          };
          steps.set(e.step, s);
        }
        s.duration.observe(e.ms / 1000);
        s.inc(e.recordsIn, e.recordsOut);
      },
      late(e) {
        m.late.inc({ topology, step: e.step }, e.records);
      },
      acknowledged(e) {
        const s = partitions.get(`${e.topic}\u0000${e.partition}`);
        if (!s) return;
        let p = s.pending.get(e.sink);
        if (!p) {
          p = { batches: [], acked: -1 };
          s.pending.set(e.sink, p);
        }
        const next = Number(e.next);
        p.acked = Math.max(p.acked, next);
        if (p.batches.length === 0 || p.batches[0]!.last >= next) return;
        const ack = now();
        const h = sink(e.sink).e2e;
        while (p.batches.length > 0 && p.batches[0]!.last < next) {
          h.observeMany(p.batches.shift()!.times, (ts) => (ack - ts) / 1000);
        }
      },
      insertStarted(e) {
        addInFlight(e.sink, e.rows);
      },
      inserted(e) {
        const l = { topology, sink: e.sink };
        addInFlight(e.sink, -e.rows);
        if (e.rows > 0) m.chRows.inc(l, e.rows);
        sink(e.sink).insert.observe(e.ms / 1000);
        setSinkUp(e.sink, true);
      },
      insertFailed(e) {
        const l = { topology, sink: e.sink };
        addInFlight(e.sink, -e.rows);
        m.chErrors.inc({ ...l, reason: e.code });
        sink(e.sink).insert.observe(e.ms / 1000);
        setSinkUp(e.sink, false, e.code);
      },
      table(e) {
        const l = { topology, topic: e.topic };
        const prev = tables.get(e.topic);
        const caughtUp = (prev?.caughtUp ?? false) || e.behind <= 0;
        tables.set(e.topic, { behind: e.behind, caughtUp, skipped: e.skipped });
        if (e.skipped > (prev?.skipped ?? 0)) m.tableSkipped.inc(l, e.skipped - (prev?.skipped ?? 0));
        m.tableRows.set(l, e.rows);
        m.tableCatchup.set(l, Math.max(0, e.behind));
        m.tableCaughtUp.set(l, caughtUp ? 1 : 0);
      },
      observeSteps(source) {
        observed = source;
      },
      observed: () => observed(),
      memory(e) {
        m.memoryBudget.set({ topology }, e.budgetBytes);
        m.prefetchBound.set({ topology }, e.prefetchKbytes * 1024);
        m.sinkBufferBound.set({ topology }, e.maxBufferedRows);
        buffered = e.buffered;
      },
      buffered: () => buffered(),
      readiness() {
        const reasons: string[] = [];
        if (assigned === 0) reasons.push(`${topology}: no partitions assigned`);
        for (const [topic, s] of tables) {
          if (!s.caughtUp) reasons.push(`${topology}: table ${topic} catching up (${s.behind} records behind)`);
        }
        for (const [id, why] of sinksDown) reasons.push(`${topology}: sink ${id} unreachable (${why})`);
        return { ready: reasons.length === 0, reasons };
      },
    };
  }

  return {
    registry,
    topology(name) {
      let h = handles.get(name);
      if (!h) {
        h = createHandle(name);
        handles.set(name, h);
      }
      return h;
    },
    readiness() {
      const reasons: string[] = [];
      if (handles.size === 0) reasons.push('no topology is running');
      for (const h of handles.values()) reasons.push(...h.readiness().reasons);
      return { ready: reasons.length === 0, reasons };
    },
  };
}
