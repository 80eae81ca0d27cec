// The compiled plan: what a Kafka worker (and the offline driver) runs. Synchronous per batch, time from the
// caller, tables fed through an explicit API, state open for snapshots, outputs per sink and dead letters.

import type { CheckedTopology } from '../compile/checked.ts';
import type { ErrorsConfig, Topology } from '../compile/schema.ts';
import { PipelinesError } from '../errors.ts';
import type { SinkSpec, SinkWriter } from '../sinks/spec.ts';
import type { PartitionClock } from '../state/changelog.ts';
import type { StagedValue } from '../steps/repartition.ts';
import type {
  BuildContext,
  Output,
  Processor,
  RecordContext,
  SourceRecord,
  StateEntry,
  StepObservation,
  TableView,
  TimeInfo,
  Vars,
} from '../steps/step.ts';
import { RejectedRecord } from '../steps/step.ts';
import { type AvroType, recordConstructors } from '../topology/avro.ts';
import { type CompiledExpression, ExpressionRuntime } from '../topology/expressions.ts';
import type { Scope } from '../topology/types.ts';

export type { SourceRecord } from '../steps/step.ts';

/** Apart from partition numbers (Kafka allows far fewer): the watermark keys of a second or third flow. */
const SLOT_STRIDE = 1 << 20;

export interface DeadLetter {
  record: SourceRecord;
  /** Id of the step (or sink) where the record failed. */
  stepId: string;
  /** Error class: ExpressionError, MissingTableRow, LateEvent, UnknownEventType, or the thrown error's name. */
  errorClass: string;
  message: string;
  retriable: boolean;
}

export interface BatchResult {
  /** Per sink id, what the sink receives, in order. */
  sinks: Record<string, unknown[]>;
  deadLetters: DeadLetter[];
  /** Event-time watermark after this batch. */
  watermark: number;
  stats: { records: number; deadLettered: number; skipped: number };
}

/** Thrown by `process` when a record fails and the policy is `onError: fail`: the batch must not be committed. */
export class PipelineFailure extends PipelinesError {
  readonly stepId: string;
  readonly record: SourceRecord;
  constructor(stepId: string, record: SourceRecord, cause: unknown) {
    super(
      'STEP_FAILED',
      `step '${stepId}' failed on ${record.topic}/${record.partition}@${String(record.offset)}: ${(cause as Error)?.message}`,
      { cause },
    );
    this.name = 'PipelineFailure';
    this.stepId = stepId;
    this.record = record;
  }
}

export interface PlanSink {
  id: string;
  kind: string;
  /** The sink's kind, whole: it builds the running sink from this. */
  spec: SinkSpec;
  /** Step id the sink reads, or 'source'. */
  from: string;
  /** The sink's config as written (with defaults), for the sink runtime (table, engine, topic...). */
  config: Record<string, unknown>;
  writer: SinkWriter;
  /** The variables the sink receives. */
  scope: Scope;
}

export interface PlanState {
  /** Largest event time seen per source partition. */
  watermarks: Record<string, number>;
  steps: Record<string, unknown>;
}

/** Lookup tables, fed by the worker from compacted topics (or by the test driver). Keys are strings. */
export class TableStore {
  readonly #tables = new Map<string, Map<string, unknown>>();
  readonly #listeners = new Map<string, ((key: string) => void)[]>();
  readonly #keyFields: Map<string, string | undefined>;

  constructor(keyFields: Map<string, string | undefined>) {
    this.#keyFields = keyFields;
    for (const name of keyFields.keys()) this.#tables.set(name, new Map());
  }

  names(): string[] {
    return [...this.#tables.keys()];
  }

  /** The key of a row: its key field when the table declares one. */
  keyOf(table: string, row: unknown): string | undefined {
    const f = this.#keyFields.get(table);
    const v = f && row && typeof row === 'object' ? (row as Record<string, unknown>)[f] : undefined;
    return v === undefined || v === null ? undefined : String(v);
  }

  upsert(table: string, key: string | number, row: unknown): void {
    const t = this.#table(table);
    const k = String(key);
    t.set(k, row);
    for (const l of this.#listeners.get(table) ?? []) l(k);
  }

  /** A tombstone (null value on the compacted topic). */
  delete(table: string, key: string | number): void {
    this.#table(table).delete(String(key));
  }

  get(table: string, key: string): unknown {
    return this.#table(table).get(key);
  }

  size(table: string): number {
    return this.#table(table).size;
  }

  view(table: string): Omit<TableView, 'fields'> {
    const t = this.#table(table);
    return {
      get: (key) => t.get(key),
      onUpsert: (l) => this.#listeners.set(table, [...(this.#listeners.get(table) ?? []), l]),
    };
  }

  #table(name: string): Map<string, unknown> {
    const t = this.#tables.get(name);
    if (!t) throw new PipelinesError('CONFIG', `no table '${name}' in this topology`);
    return t;
  }
}

interface Node {
  id: string;
  processor: Processor;
  out: Output;
}

export class Plan {
  readonly name: string;
  readonly topology: Topology;
  readonly checked: CheckedTopology;
  readonly steps: readonly { id: string; kind: string; stateful: boolean }[];
  readonly sinks: readonly PlanSink[];
  readonly tables: TableStore;
  readonly errors: ErrorsConfig & { onError: 'deadLetter' | 'skip' | 'fail' };
  /**
   * Reader types of the source's event types, by full name. Decode with these (`type.fromBuffer(buf, resolver)`,
   * resolvers from the writer's schema) and records reach expressions as they are; a value built by another
   * avsc Type instance is first copied into plain objects (correct, but slower).
   */
  readonly readerTypes: ReadonlyMap<string, AvroType>;
  /** Row types of the tables with a schema, by table name. */
  readonly tableTypes: ReadonlyMap<string, AvroType>;
  /** Topics the worker subscribes to: the source, and the topics of the tables. */
  readonly topics: { source: string; tables: Record<string, string> };

  readonly #nodes: Node[];
  /** Per flow (step id, 'source' or a named source), the steps reading it: [step index, which of its inputs]. */
  readonly #children = new Map<string, Array<[number, number]>>();
  /**
   * Offline, a topology with sources under spec.sources runs as one plan: per topic, the flow its records start
   * and how their event time is read. Watermarks are then kept per flow and partition (see #slot).
   */
  readonly #byTopic = new Map<string, { flow: string; input: number; eventTime: CompiledExpression | undefined }>();
  /** Flows whose watermarks are kept apart: a join stage's inputs, or the sources of an offline plan. */
  readonly #flows: number;
  /** A join's stage: several flows through one internal topic, each partition with its own watermark. */
  readonly #joinStage: boolean;
  /** Per partition of a join's internal topic, its own watermark (see #partitionWatermark). */
  readonly #partitionWatermarks = new Map<number, number>();
  readonly #taps = new Map<string, PlanSink[]>();
  readonly #sinkWhen = new Map<string, CompiledExpression>();
  readonly #eventTime: CompiledExpression | undefined;
  /** A stage after a repartition step: a record's value holds the variables (see CheckedTopology.entry). */
  readonly #entry: boolean;
  readonly #maxOutOfOrder: number;
  readonly #idleTimeout: number | undefined;
  readonly #partitionMax = new Map<number, number>();
  readonly #partitionSeen = new Map<number, number>();
  /** Partitions this worker owns (told by the worker): one without records yet holds the watermark back. */
  readonly #assigned = new Set<number>();
  readonly #knownCtors = new Set<unknown>([Object, undefined]);
  #watermark = Number.NEGATIVE_INFINITY;
  /** The wall clock of the batch or tick in hand. */
  #now = 0;
  #result!: BatchResult;

  constructor(checked: CheckedTopology, modules: ReadonlyMap<string, (...a: never[]) => unknown>) {
    this.checked = checked;
    this.topology = checked.topology;
    this.name = checked.topology.metadata.name;
    const spec = checked.topology.spec;
    this.errors = { ...spec.errors, onError: spec.errors.onError ?? (spec.errors.deadLetter ? 'deadLetter' : 'fail') };
    this.topics = {
      source: spec.source.topic,
      tables: Object.fromEntries(Object.entries(spec.tables).map(([n, t]) => [n, t.topic])),
    };
    const ctors = new Map();
    for (const s of checked.schemas) recordConstructors(s.type, ctors);
    for (const t of checked.tables.values()) if (t.schema) recordConstructors(t.schema.type, ctors);
    const runtime = new ExpressionRuntime(ctors);
    for (const c of ctors.values()) this.#knownCtors.add(c);
    this.readerTypes = new Map(checked.schemas.filter((s) => s.name).map((s) => [s.name!, s.type]));
    this.tableTypes = new Map([...checked.tables].flatMap(([n, t]) => (t.schema ? [[n, t.schema.type] as const] : [])));
    this.tables = new TableStore(new Map(Object.entries(spec.tables).map(([n, t]) => [n, t.key])));
    this.#eventTime = spec.source.eventTime ? runtime.compile(spec.source.eventTime) : undefined;
    this.#entry = checked.entry !== undefined;
    if (checked.sources.size > 0) {
      this.#byTopic.set(spec.source.topic, { flow: 'source', input: 0, eventTime: this.#eventTime });
      let input = 1;
      for (const [name, sc] of Object.entries(spec.sources))
        this.#byTopic.set(sc.topic, {
          flow: name,
          input: input++,
          eventTime: sc.eventTime ? runtime.compile(sc.eventTime) : undefined,
        });
    }
    this.#flows = Math.max(1, checked.entryInputs ?? this.#byTopic.size);
    this.#joinStage = this.#entry && this.#flows > 1;
    this.#maxOutOfOrder = spec.source.maxOutOfOrderness;
    this.#idleTimeout = spec.source.idleTimeout;

    const build = (stepId: string, module?: (...a: never[]) => unknown, scope?: Scope): BuildContext => ({
      stepId,
      ...(scope ? { scope } : {}),
      now: () => this.#now,
      compile: (s) => runtime.compile(s),
      table: (name) => ({ ...this.tables.view(name), fields: () => recordFields(this.tableTypes.get(name)) }),
      file: (rel) => `${checked.dir}/${rel}`,
      ...(module ? { module } : {}),
    });
    this.steps = checked.steps.map((s) => ({ id: s.id, kind: s.kind, stateful: s.spec.stateful }));
    this.#nodes = checked.steps.map((s, i) => {
      const processor = s.spec.create(s.config as never, build(s.id, modules.get(s.id), s.scopeIn));
      const node: Node = { id: s.id, processor, out: undefined as unknown as Output };
      node.out = {
        emit: (vars, rc) => this.#deliver(s.id, vars, rc),
        reject: (rc, err) => this.#deadLetter(s.id, rc.record, err),
      };
      [s.from, ...(s.inputs ?? [])].forEach((flow, input) => {
        this.#children.set(flow, [...(this.#children.get(flow) ?? []), [i, input]]);
      });
      return node;
    });
    this.sinks = checked.sinks.map((s) => {
      const writer = s.spec.create(s.config as never, build(s.id));
      const sink: PlanSink = {
        id: s.id,
        kind: s.kind,
        spec: s.spec,
        from: s.from,
        config: s.config,
        writer,
        scope: s.scope,
      };
      if (s.config.when) this.#sinkWhen.set(s.id, runtime.compile(s.config.when));
      this.#taps.set(s.from, [...(this.#taps.get(s.from) ?? []), sink]);
      return sink;
    });
    this.#result = this.#fresh();
  }

  /** Processes one batch of decoded records, in order. `now` is the wall clock (epoch ms) from the caller. */
  process(records: readonly SourceRecord[], now: number): BatchResult {
    this.#now = now;
    const result = this.#result;
    for (let r = 0; r < records.length; r++) {
      const record = records[r]!;
      let value = record.value;
      if (typeof value === 'object' && value !== null && !this.#knownCtors.has(value.constructor))
        value = toPlain(value);
      let time = record.timestamp;
      let vars: Vars;
      let flow = 'source';
      let input = 0;
      let eventTime = this.#eventTime;
      if (this.#entry) {
        const staged = value as StagedValue;
        vars = { ...staged.vars, key: record.key, record };
        if (typeof staged.time === 'number') time = staged.time;
        input = staged.input ?? 0;
      } else {
        vars = { event: value, key: record.key, record };
        const from = this.#byTopic.size > 0 ? this.#byTopic.get(record.topic) : undefined;
        if (from) ({ flow, input, eventTime } = from);
      }
      if (eventTime) {
        try {
          time = Number(eventTime.evaluate(vars));
        } catch (err) {
          this.#fail(flow, record, err);
          continue;
        }
      }
      // Partitions are keyed by number (no string per record); several flows each have their own.
      const p = this.#slot(record.partition, input);
      const max = this.#partitionMax.get(p);
      if (max === undefined || time > max) this.#partitionMax.set(p, time);
      this.#partitionSeen.set(p, now);
      result.stats.records++;
      if (!this.#joinStage) this.#deliver(flow, vars, { record, time }, this.#entry ? input : undefined);
      else {
        const partitionWatermark = this.#partitionWatermarks.get(record.partition) ?? Number.NEGATIVE_INFINITY;
        this.#deliver(flow, vars, { record, time, partitionWatermark }, input);
      }
    }
    return this.#advance(now, false, records[0]?.partition);
  }

  /**
   * Time moves without records: idle partitions, enrich waits, window closes, and the timers of `partition` (or of
   * every partition, offline) fall due.
   */
  tick(now: number, partition?: number): BatchResult {
    return this.#advance(now, false, partition);
  }

  /** End of input (offline runs, shutdown of a bounded replay): every window closes, waits end. */
  flush(now: number): BatchResult {
    return this.#advance(now, true);
  }

  /**
   * A source partition was assigned: until its first record (or until it is idle) it holds the watermark back, so
   * that a partition fetched first cannot push the watermark past records the others have not delivered yet.
   */
  assignPartition(partition: number, now: number): void {
    for (let f = 0; f < this.#flows; f++) {
      const slot = this.#slot(partition, f);
      this.#assigned.add(slot);
      if (!this.#partitionSeen.has(slot)) this.#partitionSeen.set(slot, now);
    }
  }

  /**
   * The watermark of one partition of a join's internal topic: the slowest of its flows. Its keys are on it alone,
   * so its records wait for no other partition (as a Kafka Streams task's stream time is its own).
   */
  #partitionWatermark(partition: number, now: number): number {
    let wm = Number.POSITIVE_INFINITY;
    let any = false;
    for (let f = 0; f < this.#flows; f++) {
      const slot = this.#slot(partition, f);
      const max = this.#partitionMax.get(slot);
      if (max === undefined) {
        // A flow that has sent nothing to this partition since it was assigned holds it for idleTimeout only.
        const idle =
          this.#idleTimeout !== undefined && now - (this.#partitionSeen.get(slot) ?? now) >= this.#idleTimeout;
        if (idle) continue;
        return this.#partitionWatermarks.get(partition) ?? Number.NEGATIVE_INFINITY;
      }
      any = true;
      wm = Math.min(wm, max - this.#maxOutOfOrder);
    }
    const before = this.#partitionWatermarks.get(partition) ?? Number.NEGATIVE_INFINITY;
    if (!any || wm <= before) return before;
    this.#partitionWatermarks.set(partition, wm);
    return wm;
  }

  /**
   * The watermark key of a partition of one flow: a join waits for the slower of its two flows, even when both
   * come through one internal topic (a backlog of one source must not make the other's records late).
   */
  #slot(partition: number, flow: number): number {
    return flow === 0 ? partition : partition + flow * SLOT_STRIDE;
  }

  /** Stop tracking a source partition (revoked in a rebalance), so that it no longer holds the watermark back. */
  releasePartition(partition: number): void {
    for (const n of this.#nodes) n.processor.release?.(partition);
    this.#partitionWatermarks.delete(partition);
    for (let f = 0; f < this.#flows; f++) {
      const slot = this.#slot(partition, f);
      this.#assigned.delete(slot);
      this.#partitionMax.delete(slot);
      this.#partitionSeen.delete(slot);
    }
  }

  /** What the steps that observe themselves count and hold (sagas), for the metrics. */
  observed(): Array<{ step: string } & StepObservation> {
    return this.#nodes.flatMap((n) => (n.processor.observe ? [{ step: n.id, ...n.processor.observe() }] : []));
  }

  /** A step has timers: the worker ticks idle partitions (see `tick`). */
  get ticks(): boolean {
    return this.#nodes.some((n) => n.processor.timers === true);
  }

  get watermark(): number {
    return this.#watermark;
  }

  /** The state of every stateful step, as plain data, with the partition watermarks. */
  snapshot(): PlanState {
    const steps: Record<string, unknown> = {};
    for (const n of this.#nodes) if (n.processor.snapshot) steps[n.id] = n.processor.snapshot();
    return { watermarks: Object.fromEntries(this.#partitionMax), steps };
  }

  /** Per step that has some, its state entries (what a test reads; `snapshot` is for restoring). */
  entries(): Record<string, StateEntry[]> {
    const out: Record<string, StateEntry[]> = {};
    for (const n of this.#nodes) if (n.processor.entries) out[n.id] = n.processor.entries();
    return out;
  }

  restore(state: PlanState): void {
    for (const [p, w] of Object.entries(state.watermarks)) this.#partitionMax.set(Number(p), w);
    for (const n of this.#nodes)
      if (n.processor.restore && state.steps[n.id] !== undefined) n.processor.restore(state.steps[n.id]);
  }

  /** True when a step keeps state that a changelog should hold (fold, aggregate, dedupe). */
  get hasState(): boolean {
    return this.#nodes.some((n) => n.processor.changes !== undefined);
  }

  /** Starts tracking state changes for `drainChanges` (the worker's changelog). */
  trackChanges(): void {
    for (const n of this.#nodes) n.processor.changes?.();
  }

  /** State entries changed since the last call, keyed `<step id>|<key>`; null values are deletions. */
  drainChanges(): Array<[string, unknown]> {
    const out: Array<[string, unknown]> = [];
    for (const n of this.#nodes) {
      if (!n.processor.changes) continue;
      for (const [k, v] of n.processor.changes()) out.push([`${n.id}|${k}`, v]);
    }
    return out;
  }

  /** Loads entries read back from the changelog; entries of steps no longer in the topology are ignored. */
  loadState(entries: Iterable<[string, unknown]>): { loaded: number; ignored: number } {
    const byId = new Map(this.#nodes.map((n) => [n.id, n.processor]));
    let loaded = 0;
    let ignored = 0;
    for (const [key, value] of entries) {
      const bar = key.indexOf('|');
      const processor = bar > 0 ? byId.get(key.slice(0, bar)) : undefined;
      if (!processor?.load) {
        ignored++;
        continue;
      }
      processor.load(key.slice(bar + 1), value);
      loaded++;
    }
    return { loaded, ignored };
  }

  /** What the changelog's marker keeps of a partition's event time (see PartitionClock), and its restore. */
  partitionClock(partition: number): PartitionClock {
    const time = this.#partitionTime(partition) ?? null;
    if (!this.#joinStage) return { time };
    const flows: Array<number | null> = [];
    for (let f = 0; f < this.#flows; f++) flows.push(this.#partitionMax.get(this.#slot(partition, f)) ?? null);
    const watermark = this.#partitionWatermarks.get(partition);
    return { time, flows, ...(watermark !== undefined && Number.isFinite(watermark) ? { watermark } : {}) };
  }

  restorePartitionClock(partition: number, clock: PartitionClock): void {
    if (clock.flows?.length === this.#flows && this.#joinStage) {
      clock.flows.forEach((time, f) => {
        const slot = this.#slot(partition, f);
        const max = this.#partitionMax.get(slot);
        if (time !== null && (max === undefined || time > max)) this.#partitionMax.set(slot, time);
      });
      const wm = this.#partitionWatermarks.get(partition);
      if (clock.watermark !== undefined && (wm === undefined || clock.watermark > wm))
        this.#partitionWatermarks.set(partition, clock.watermark);
      return;
    }
    if (clock.time !== null) this.#restorePartitionTime(partition, clock.time);
  }

  /** Largest event time seen on a source partition (the marker's `time`), and its restore. */
  #partitionTime(partition: number): number | undefined {
    // Over several flows, the slowest: restored to every flow, it holds none ahead of what it had.
    let min: number | undefined;
    for (let f = 0; f < this.#flows; f++) {
      const t = this.#partitionMax.get(this.#slot(partition, f));
      if (t === undefined) return f === 0 ? undefined : min;
      if (min === undefined || t < min) min = t;
    }
    return min;
  }

  #restorePartitionTime(partition: number, time: number): void {
    for (let f = 0; f < this.#flows; f++) {
      const slot = this.#slot(partition, f);
      const max = this.#partitionMax.get(slot);
      if (max === undefined || time > max) this.#partitionMax.set(slot, time);
    }
  }

  /** The records steps hold back (waiting for a table row), with the step and the key each waits for. */
  held(): Array<{ step: string; key: string; record: SourceRecord }> {
    return this.#nodes.flatMap((n) => [...(n.processor.held?.() ?? [])].map((h) => ({ step: n.id, ...h })));
  }

  /** Per `topic/partition`, the lowest offset still held by a step (the worker must not commit past it). */
  heldOffsets(): Record<string, number | bigint | string> {
    const out: Record<string, number | bigint | string> = {};
    for (const { record: r } of this.held()) {
      const p = `${r.topic}/${r.partition}`;
      if (out[p] === undefined || BigInt(r.offset) < BigInt(out[p]!)) out[p] = r.offset;
    }
    return out;
  }

  #fresh(): BatchResult {
    const sinks: Record<string, unknown[]> = {};
    for (const s of this.sinks ?? []) sinks[s.id] = [];
    return { sinks, deadLetters: [], watermark: this.#watermark, stats: { records: 0, deadLettered: 0, skipped: 0 } };
  }

  #advance(now: number, final: boolean, partition?: number): BatchResult {
    this.#now = now;
    let wm = Number.POSITIVE_INFINITY;
    let any = false;
    // In a join's stage a flow that has sent records holds the watermark until it sends more: were it idle by the
    // wall clock, a stage lagging after a restart would let the other flow's records expire before their partners
    // came, and a batch replayed after a crash could expire other records than it did the first time.
    const holds = this.#joinStage;
    for (const [p, max] of this.#partitionMax) {
      const idle =
        !holds && this.#idleTimeout !== undefined && now - (this.#partitionSeen.get(p) ?? now) >= this.#idleTimeout;
      if (idle) continue;
      any = true;
      wm = Math.min(wm, max - this.#maxOutOfOrder);
    }
    for (const p of this.#assigned) {
      if (this.#partitionMax.has(p)) continue;
      const idle = this.#idleTimeout !== undefined && now - (this.#partitionSeen.get(p) ?? now) >= this.#idleTimeout;
      if (!idle) wm = Number.NEGATIVE_INFINITY;
    }
    if (!any) wm = Number.NEGATIVE_INFINITY;
    if (wm > this.#watermark) this.#watermark = wm;
    const time: TimeInfo = { watermark: final ? Number.POSITIVE_INFINITY : this.#watermark, now, final };
    if (partition !== undefined) time.partition = partition;
    if (partition !== undefined && this.#joinStage)
      time.partitionWatermark = final ? Number.POSITIVE_INFINITY : this.#partitionWatermark(partition, now);
    for (const n of this.#nodes) {
      if (!n.processor.advance) continue;
      try {
        n.processor.advance(time, n.out);
      } catch (err) {
        if (err instanceof PipelineFailure) throw err;
        throw new PipelineFailure(
          n.id,
          { topic: '', partition: -1, offset: -1, key: null, value: null, timestamp: now },
          err,
        );
      }
    }
    const result = this.#result;
    result.watermark = this.#watermark;
    this.#result = this.#fresh();
    return result;
  }

  #run(i: number, vars: Vars, rc: RecordContext, input: number): void {
    const node = this.#nodes[i]!;
    try {
      node.processor.process(vars, rc, node.out, input);
    } catch (err) {
      this.#fail(node.id, rc.record, err);
    }
  }

  /**
   * Output of flow `from`: to the sinks that read it, then to the steps that read it. `input`: which flow of the
   * entry step a record of an internal topic comes from.
   */
  #deliver(from: string, vars: Vars, rc: RecordContext, input?: number): void {
    const taps = this.#taps.get(from);
    if (taps) {
      for (const sink of taps) {
        try {
          const when = this.#sinkWhen.get(sink.id);
          if (when && when.evaluate(vars) !== true) continue;
          this.#result.sinks[sink.id]!.push(sink.writer.toOutput(vars, rc));
        } catch (err) {
          this.#fail(sink.id, rc.record, err);
        }
      }
    }
    const children = this.#children.get(from);
    if (!children) return;
    // Steps may add variables to the object they get: a second branch gets its own copy.
    for (let c = 0; c < children.length; c++) {
      const [i, k] = children[c]!;
      this.#run(i, c === 0 ? vars : { ...vars }, rc, input ?? k);
    }
  }

  #fail(stepId: string, record: SourceRecord, err: unknown): void {
    if (err instanceof PipelineFailure) throw err;
    if (err instanceof RejectedRecord) {
      this.#deadLetter(stepId, record, err);
      return;
    }
    switch (this.errors.onError) {
      case 'skip':
        this.#result.stats.skipped++;
        return;
      case 'fail':
        throw new PipelineFailure(stepId, record, err);
      default:
        this.#deadLetter(stepId, record, err);
    }
  }

  #deadLetter(stepId: string, record: SourceRecord, err: unknown): void {
    const e = err as Error & { errorClass?: string; retriable?: boolean };
    this.#result.deadLetters.push({
      record,
      stepId,
      errorClass: e?.errorClass ?? e?.name ?? 'Error',
      message: e?.message ?? String(err),
      retriable: e?.retriable === true,
    });
    this.#result.stats.deadLettered++;
  }
}

/** Deep copy into plain objects (records of an avsc Type the plan does not know). */
function toPlain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(toPlain);
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array || v instanceof Date) return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) out[k] = toPlain((v as Record<string, unknown>)[k]);
  return out;
}

function recordFields(type: unknown): string[] {
  return ((type as { fields?: { name: string }[] } | undefined)?.fields ?? []).map((f) => f.name);
}
