// The contract of a sink kind: its config spec, its type check, the shaping of what it receives (the plan
// hands it these outputs), and the building of its runtime. Each kind's folder holds one (`<kind>/index.ts`).
import { z } from 'zod';
import type { MessageSender } from '../kafka/produce.ts';
import type { WorkerLog } from '../observe/log.ts';
import type { PipelineEvents } from '../observe/metrics.ts';
import type { RetryPolicy } from '../retry.ts';
import type { BuildContext, CheckContext, RecordContext, RelPath, Vars } from '../steps/step.ts';
import type { LoadedSchema } from '../topology/avro.ts';
import { expression } from '../topology/durations.ts';
import type { Scope } from '../topology/types.ts';
import type { TableSpec } from './clickhouse/ddl.ts';
import type { Sink } from './sink.ts';

export const sinkCommon = {
  id: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]+$/)
    .optional()
    .describe('Stable id (metric label, output name); default `<kind>:<table or topic>`.'),
  from: z.string().optional().describe('Id of the step whose output this sink receives; default: the last step.'),
  when: expression('condition; only records for which it is true reach this sink').optional(),
};

export interface SinkWriter {
  /** What the sink receives for one record (a row, or a key and value). Throws to hand it to the policy. */
  toOutput(vars: Vars, ctx: RecordContext): unknown;
  /** The Avro type each value is encoded with, if any: the test driver checks the outputs against it. */
  readonly valueType?: LoadedSchema['type'];
}

/** What a sink needs to exist before it runs: said by `pipelines topics`, `clickhouse plan` and the manifests. */
export interface SinkNeeds {
  /** Kafka topics it writes (each should be declared under spec.topics), and where the config names each. */
  topics?: Array<{ name: string; at: RelPath }>;
  /** ClickHouse tables it writes, as they would be created. */
  tables?: TableSpec[];
}

/** A sink of the compiled plan, as its kind's `build` receives it. */
export interface PlanSinkOf<C, W> {
  id: string;
  config: C;
  /** What `create` returned: the record shaper, and what it loaded (schemas) for the runtime. */
  writer: W;
  /** The variables the sink receives (their types give the ClickHouse columns). */
  scope: Scope;
}

/** What the worker lends a sink while it is built; everything a sink needs from outside comes through here. */
export interface SinkContext {
  readonly topology: string;
  readonly env: NodeJS.ProcessEnv;
  readonly log: WorkerLog;
  readonly events: PipelineEvents | undefined;
  /** Registers the value schema (or checks it against the subject's compatibility mode); refuses if not. */
  encoder(subject: string, schema: object): Promise<{ encode(value: unknown): Buffer }>;
  /** The worker's one producer (transactional when any sink asks for it). */
  producer(): MessageSender;
  /** One resource shared by every sink of a kind (the ClickHouse connection), closed when the worker stops. */
  shared<T>(key: string, open: () => T, close: (resource: T) => Promise<void>): T;
  /** A readiness check for /readyz: the reasons the sink is not ready (empty when it is). */
  readiness(check: () => Promise<string[]>): void;
  /** Rebuild mode (`pipelines replay`): renamed tables under the live ones' insert tokens, own log key. */
  readonly rebuild?: { table(name: string): string; logSink(sinkId: string): string };
  readonly allowDestructive: boolean;
  /** The topology's retry policy (`errors.retry`): the sink retries its own writes under it. */
  readonly retry: RetryPolicy;
  readonly tuning: { clickhouseMaxRows?: number };
  /** The members the worker's consumer group has now, itself included once it joined. */
  groupMembers(): Promise<number>;
}

/**
 * One sink kind, whole: its config (the zod schema is the only declaration of its fields), its type check,
 * the shaping of each record, what it needs created, and `build`, which returns the running sink.
 */
export interface SinkSpec<S extends z.ZodType = z.ZodType, W extends SinkWriter = SinkWriter> {
  kind: string;
  summary: string;
  description: string;
  config: S;
  examples: z.input<S>[];
  defaultId(config: z.output<S>): string;
  /** One line for `pipelines graph` (e.g. `table order_summary`). */
  describe(config: z.output<S>): string;
  check(config: z.output<S>, ctx: CheckContext, scope: Scope): void;
  create(config: z.output<S>, ctx: BuildContext): W;
  needs(config: z.output<S>, scope: Scope): SinkNeeds;
  /** The producer the sink writes with, if it writes to Kafka. */
  producer?(config: z.output<S>): 'idempotent' | 'transactional';
  /** Keeps its own positions, so that `pipelines replay` can rebuild it beside the live one. */
  rebuildable: boolean;
  build(sink: PlanSinkOf<z.output<S>, W>, ctx: SinkContext): Promise<Sink>;
  /** Reads (and so checks) the environment values `build` will read: at start-up, before any service is contacted. */
  checkSettings?(env: NodeJS.ProcessEnv): void;
}

export function defineSink<S extends z.ZodType, W extends SinkWriter>(spec: SinkSpec<S, W>): SinkSpec<S, W> {
  return spec;
}
