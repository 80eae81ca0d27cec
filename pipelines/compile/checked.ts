// What the validator makes of a topology file once it holds together: the steps and sinks with the variables
// flowing through them. The compiled plan (runtime/plan.ts) and the stages (stages.ts) are built from it.
import type { SinkSpec } from '../sinks/spec.ts';
import type { StepSpec, TableInfo } from '../steps/step.ts';
import type { LoadedSchema } from '../topology/avro.ts';
import type { FieldType, Scope } from '../topology/types.ts';
import type { Path } from '../topology/yaml.ts';
import type { Topology } from './schema.ts';

export interface CheckedStep {
  id: string;
  kind: string;
  spec: StepSpec;
  config: unknown;
  description: string | undefined;
  path: Path;
  /** Step id whose output this step reads, 'source', or the name of a source under spec.sources. */
  from: string;
  /** The other flows it reads (StepSpec.inputs), resolved as `from` is. */
  inputs?: string[];
  scopeIn: Scope;
  scopeOut: Scope;
}

export interface CheckedSink {
  id: string;
  kind: string;
  spec: SinkSpec;
  config: { from?: string; when?: string } & Record<string, unknown>;
  path: Path;
  /** Step id this sink reads, or 'source' when there are no steps. */
  from: string;
  scope: Scope;
}

export interface CheckedTopology {
  file: string;
  /** The folder of the topology file: schema and module paths must stay inside it. */
  dir: string;
  topology: Topology;
  schemas: LoadedSchema[];
  eventTypes: Map<string, FieldType>;
  sourceScope: Scope;
  /** The sources under spec.sources, by name: their variables and event types (their schemas are in `schemas`). */
  sources: Map<string, { scope: Scope; schemas: LoadedSchema[] }>;
  tables: Map<string, { info: TableInfo; schema?: LoadedSchema }>;
  steps: CheckedStep[];
  sinks: CheckedSink[];
  /**
   * A stage after a repartition, join or merge step (stages.ts): the id of that step. Its source records carry
   * the variables at that step and their event time (StagedValue), not an event.
   */
  entry?: string;
  /** How many flows the entry step reads (a join: 2): the watermark waits for each of them. */
  entryInputs?: number;
}
