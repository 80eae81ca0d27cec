// The small contract every step kind implements: a spec (config schema with descriptions, defaults and
// examples), a type-flow check used by the validator, and a factory for the synchronous processor.
import type { z } from 'zod';
import type { Headers } from '../kafka/headers.ts';
import type { KeptHistogram } from '../observe/histogram.ts';
import type { CompiledExpression } from '../topology/expressions.ts';
import type { FieldType, Scope } from '../topology/types.ts';

/** One decoded Kafka record, as the worker hands it to a plan. */
export interface SourceRecord {
  topic: string;
  partition: number;
  offset: number | bigint | string;
  key: unknown;
  value: unknown;
  /** Kafka record timestamp, epoch milliseconds. */
  timestamp: number;
  headers?: Readonly<Headers>;
}

/** The variables of one record at one point of the chain (`event`, `key`, `record`, then what steps add). */
export type Vars = Record<string, unknown>;

export interface RecordContext {
  /** The source record this output descends from (provenance for dead letters). */
  readonly record: SourceRecord;
  /** Event time of this record or window, epoch milliseconds. */
  readonly time: number;
  /**
   * In a join's stage, the watermark of the record's partition as its last batch left it (restored with the
   * changelog's marker; -Infinity for a partition that has none): what the join judges lateness by.
   */
  readonly partitionWatermark?: number;
}

export interface TimeInfo {
  /** Event-time watermark: no more records older than this are expected (min over partitions). */
  watermark: number;
  /** Wall-clock time from the injected clock. */
  now: number;
  /** End of input (offline runs, shutdown): close every window and stop waiting. */
  final: boolean;
  /**
   * The source partition whose batch (or tick) this is, when there is one: a step whose timers emit (a saga)
   * fires only that partition's, so that what they emit and change is committed with that partition.
   */
  partition?: number;
  /**
   * In a join's stage (several flows through one internal topic): the watermark of `partition` alone, the
   * slowest of its flows. Its keys are on that partition only.
   */
  partitionWatermark?: number;
}

export interface Output {
  emit(vars: Vars, ctx: RecordContext): void;
  /** Send this record to the dead-letter output, whatever the error policy says (a decision of the step). */
  reject(ctx: RecordContext, error: Error): void;
}

export interface Processor {
  /**
   * One record in, zero or more out through `out.emit`; synchronous. Throwing hands the record to the policy.
   * `input` says which flow it comes from, for a step reading several (a join): 0 for `from`, then `inputs`.
   */
  process(vars: Vars, ctx: RecordContext, out: Output, input?: number): void;
  /** After each batch and on each tick: time moved on (close windows, expire waits, evict). */
  advance?(time: TimeInfo, out: Output): void;
  /** The step's state, as plain data, in the step's own shape (for `restore`). */
  snapshot?(): unknown;
  restore?(state: unknown): void;
  /**
   * State entries changed since the last call, as [key, plain value] (null: the key is gone), for the state
   * changelog. The first call starts the tracking (and returns nothing): a plan without a changelog pays nothing.
   */
  changes?(): Array<[string, unknown]>;
  /** The state as a test reads it (the driver, `expect.state`): one entry per key, or per key and window. */
  entries?(): StateEntry[];
  /** Loads one entry read back from the changelog (null: delete), before any record. */
  load?(key: string, value: unknown): void;
  /** Acts on the wall clock alone (timers): the worker ticks each partition when no record comes. */
  readonly timers?: boolean;
  /** A partition left this worker: forget its state (its next owner restores it from the changelog). */
  release?(partition: number): void;
  /**
   * What the step counts (cumulative, by event) and holds (by state), read when metrics are scraped: bounded
   * label values only (a saga's events, its steps), never a key.
   */
  observe?(): StepObservation;
  /** Records held back (waiting for a table row), with the key each waits for: the worker must not commit past them. */
  held?(): Iterable<{ key: string; record: SourceRecord }>;
}

/** What a step reports at scrape time; see Processor.observe. */
export interface StepObservation {
  counts: Record<string, number>;
  held: Record<string, number>;
  /** Reply times of a saga's commands, one histogram per action and outcome. */
  replies?: KeptHistogram[];
}

/** One entry of a step's state: a fold's key and state, a dedupe's key and when it was seen, an open window. */
export interface StateEntry {
  key: unknown;
  /** For a window of an aggregate: its start (epoch ms). */
  windowStart?: number;
  value: unknown;
}

/** A record the step chose to dead-letter (missing table row, late event): not retriable. */
export class RejectedRecord extends Error {
  readonly retriable = false;
  readonly errorClass: string;
  constructor(errorClass: string, message: string) {
    super(message);
    this.name = errorClass;
    this.errorClass = errorClass;
  }
}

export interface TableInfo {
  name: string;
  /** Type of a row (from the table's Avro schema, or dyn). */
  row: FieldType;
}

export type RelPath = readonly (string | number)[];

/** What a step's check sees: the variables at its input, and ways to report located problems. */
export type RowKind = 'partials' | 'updates';

export interface CheckContext {
  readonly scope: Scope;
  /** The variables of each flow named by `StepSpec.inputs`, in that order. */
  readonly inputs: readonly Scope[];
  /** For sinks: what their rows mean (see StepSpec.rows), from the nearest step upstream that says. */
  readonly rows?: RowKind;
  readonly tables: ReadonlyMap<string, TableInfo>;
  /** Record type of each event type on the source topic, by short Avro name. */
  readonly eventTypes: ReadonlyMap<string, FieldType>;
  readonly hasDeadLetter: boolean;
  /** Checks an expression at `at` (relative to the step's config); undefined type when it has problems. */
  /** `quiet`: only the type, problems not reported (a second look with more precise types). */
  expr(
    source: string,
    at: RelPath,
    opts?: { bool?: boolean; scope?: Scope; offset?: number; quiet?: boolean },
  ): FieldType | undefined;
  report(code: import('../topology/diagnostics.ts').DiagnosticCode, message: string, at: RelPath, hint?: string): void;
  /** Resolves a file path relative to the topology, refusing paths outside its folder; reports problems. */
  file(rel: string, at: RelPath): string | undefined;
}

export interface TableView {
  get(key: string): unknown;
  /** Called with the key after each upsert (for `enrich` with `onMissing: wait`). */
  onUpsert(listener: (key: string) => void): void;
  /** The field names of the table's rows (its schema's), empty when it has no schema. */
  fields(): string[];
}

export interface BuildContext {
  readonly stepId: string;
  /** The variables at the step's input, as the validator typed them. */
  readonly scope?: Scope;
  /** The wall clock of the batch or tick being run (epoch ms), as the worker or the test driver gives it. */
  now(): number;
  compile(source: string): CompiledExpression;
  table(name: string): TableView;
  /** For `module` steps: the loaded function. */
  readonly module?: (...args: never[]) => unknown;
  /** Absolute path resolved at check time (module steps). */
  file(rel: string): string;
}

export interface StepSpec<S extends z.ZodType = z.ZodType> {
  kind: string;
  summary: string;
  description: string;
  config: S;
  /** Example configs, linted by a test and shown in the reference. */
  examples: z.input<S>[];
  /** Keeps state across records (its id names that state). */
  stateful: boolean;
  /** A readable, config-derived part of the step id (the id is `<kind>-<hint>` unless given). */
  idHint(config: z.output<S>): string;
  /** One line for `pipelines graph` (e.g. `customers by event.data.customerId`). */
  describe(config: z.output<S>): string;
  /** The lookup tables the step reads. */
  tables?(config: z.output<S>): string[];
  /** The TypeScript file the step runs, if any: loaded before the plan is built, handed over as `module`. */
  moduleFile?(config: z.output<S>): { path: string; export: string; at: RelPath } | undefined;
  /**
   * Sinks the step declares in its own config (a saga's commands), added to the topology's sinks and fed by this
   * step; `at` locates each in the step's config, for diagnostics.
   */
  sinks?(config: z.output<S>, stepId: string): Array<{ kind: string; config: Record<string, unknown>; at: RelPath }>;
  /**
   * What the records it emits mean to a sink, when not one fact each: `partials` (several per key, to be added
   * up: aggregate per batch) or `updates` (each the current value of its key, replacing the one before: a fold,
   * an aggregate on update). Steps without it (map, filter...) pass on what they read.
   */
  rows?(config: z.output<S>): RowKind | undefined;
  /**
   * The key its state is kept by, as an expression, when every record of one key must reach the same worker for
   * the result to be right (undefined: any partitioning will do). A topology whose source declares
   * `partitionedBy` gets a repartition step before such a step when the keys differ (compile/stages.ts).
   */
  stateKey?(config: z.output<S>): string | undefined;
  /** The other flows the step reads besides `from` (a join's `with`, a merge's list): source names or step ids. */
  inputs?(config: z.output<S>): string[];
  /**
   * For a step that needs its input keyed anew on Kafka (repartition, join, merge): one key expression per flow
   * it reads (`from`, then `inputs`). It starts a stage of its own, reading an internal topic (compile/stages.ts).
   */
  partitionKeys?(config: z.output<S>): string[];
  /** Type flow: check the config against the input variables; the variables after this step. */
  check(config: z.output<S>, ctx: CheckContext): Scope;
  create(config: z.output<S>, ctx: BuildContext): Processor;
}

export function defineStep<S extends z.ZodType>(spec: StepSpec<S>): StepSpec<S> {
  return spec;
}

/** Short stable hash (FNV-1a) of a string, for ids derived from config. */
export function shortHash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0').slice(0, 6);
}

export function slug(s: string): string {
  return (
    s
      .replace(/[^A-Za-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 40) || 'x'
  );
}
