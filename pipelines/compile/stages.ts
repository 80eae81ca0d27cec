// A topology with `repartition` steps runs on Kafka as stages: the first reads the source topic; each repartition
// step ends the stage it is in (a sink writing its internal topic) and starts one that reads that topic, as a
// consumer group of its own, in the same workers. Each stage is a whole checked topology of its own (source, steps,
// sinks, changelog), so the worker runs it as it runs any topology. Offline the topology runs as one plan.
import { repartitionSink } from '../sinks/kafka/repartition.ts';
import type { SinkSpec } from '../sinks/spec.ts';
import { repartition } from '../steps/repartition.ts';
import type { CheckedSink, CheckedStep, CheckedTopology } from './checked.ts';
import type { Topology } from './schema.ts';

export const SOURCE_STAGE = 'source';

/** One stage: 'source', or the id of the repartition step whose internal topic it reads. */
export interface Stage {
  id: string;
  checked: CheckedTopology;
}

/** A repartition step's internal topic and the group that reads it, named from the topology's group and the step. */
export function repartitionTopic(group: string, stepId: string): string {
  return `${group}.${stepId}.repartition`.replace(/[^A-Za-z0-9._-]/g, '_');
}

export function stageGroup(group: string, stepId: string): string {
  return `${group}.${stepId}`;
}

interface BoundaryConfig {
  partitions?: number;
  exactlyOnce: boolean;
}

const isRepartition = (s: CheckedStep) => s.kind === 'repartition';
/** A step that reads an internal topic on Kafka: repartition, join, merge. */
const isBoundary = (s: CheckedStep) => s.spec.partitionKeys !== undefined;
/** The flows a boundary step reads, in the order of its partition keys: `from`, then `inputs`. */
const flowsOf = (s: CheckedStep) => [s.from, ...(s.inputs ?? [])];

/**
 * The stage each step and sink runs in, by id: the main source's, a named source's, or that of the boundary step
 * it descends from. A repartition step is counted in the stage that writes its topic (it does not run after it);
 * a join or a merge runs in its own stage.
 */
export function stageIds(checked: Pick<CheckedTopology, 'steps' | 'sinks'>): Map<string, string> {
  const byId = new Map(checked.steps.map((s) => [s.id, s]));
  const of = new Map<string, string>();
  for (const s of checked.steps)
    of.set(s.id, isBoundary(s) && !isRepartition(s) ? s.id : writerStage(of, byId, s.from));
  for (const s of checked.sinks) of.set(s.id, writerStage(of, byId, s.from));
  return of;
}

/** The stage in which the output of flow `flow` is at hand: the stage a step or sink reading it runs in. */
function writerStage(of: Map<string, string>, byId: Map<string, CheckedStep>, flow: string): string {
  const step = byId.get(flow);
  if (!step) return flow; // 'source', or a named source: the stage that reads it
  return isBoundary(step) ? step.id : of.get(step.id)!;
}

/** The internal topics of a topology run by `group`: one per boundary step, made as the source topic is. */
export function internalTopics(checked: CheckedTopology, group: string): Topology['spec']['topics'] {
  const spec = checked.topology.spec;
  const source = spec.topics[spec.source.topic];
  const out: Topology['spec']['topics'] = {};
  for (const s of checked.steps.filter(isBoundary)) {
    const c = s.config as BoundaryConfig;
    out[repartitionTopic(group, s.id)] = {
      partitions: c.partitions ?? source?.partitions ?? 1,
      replicas: source?.replicas ?? 1,
      cleanup: 'delete',
      ...(source?.retention !== undefined ? { retention: source.retention } : {}),
      ...(source?.minInSync !== undefined ? { minInSync: source.minInSync } : {}),
    };
  }
  return out;
}

/** The stages of a topology run by consumer group `group`: one (the topology itself) for one source, no boundary. */
export function stagesOf(checked: CheckedTopology, group: string): Stage[] {
  const boundaries = checked.steps.filter(isBoundary);
  if (boundaries.length === 0 && checked.sources.size === 0) return [{ id: SOURCE_STAGE, checked }];
  const of = stageIds(checked);
  const byId = new Map(checked.steps.map((s) => [s.id, s]));
  const internal = internalTopics(checked, group);
  const spec = checked.topology.spec;
  const topics = { ...spec.topics, ...internal };
  return [SOURCE_STAGE, ...checked.sources.keys(), ...boundaries.map((r) => r.id)].map((id) => {
    const entry = boundaries.find((r) => r.id === id);
    const named = checked.sources.get(id);
    // What a stage begins after reads as its source; a join or a merge runs in its stage, the steps after it read it.
    const runs = entry !== undefined && !isRepartition(entry);
    const from = (f: string) => (f === id && !runs ? SOURCE_STAGE : f);
    const steps = checked.steps
      .filter((s) => of.get(s.id) === id && !isRepartition(s))
      .map((s): CheckedStep => {
        if (s.id !== id) return { ...s, from: from(s.from) };
        // A join or a merge reads its flows from the internal topic: each record says which (StagedValue.input).
        const { inputs: _inputs, ...rest } = s;
        return { ...rest, from: SOURCE_STAGE };
      });
    const sinks: CheckedSink[] = checked.sinks
      .filter((s) => of.get(s.id) === id)
      .map((s) => ({ ...s, from: from(s.from) }));
    for (const b of boundaries) {
      const keys = b.spec.partitionKeys!(b.config as never);
      const c = b.config as BoundaryConfig;
      const flows = flowsOf(b);
      flows.forEach((flow, input) => {
        if (writerStage(of, byId, flow) !== id) return;
        sinks.push({
          id: flows.length > 1 ? `${b.id}:${flow}` : b.id,
          kind: repartitionSink.kind,
          spec: repartitionSink as unknown as SinkSpec,
          config: {
            topic: repartitionTopic(group, b.id),
            key: keys[input]!,
            exactlyOnce: c.exactlyOnce,
            ...(isRepartition(b) ? {} : { input }),
          },
          path: b.path,
          from: from(flow),
          scope: input === 0 ? b.scopeIn : flowScope(checked, flow),
        });
      });
    }
    const used = new Set(steps.flatMap((s) => s.spec.tables?.(s.config as never) ?? []));
    const topology: Topology = {
      ...checked.topology,
      spec: {
        ...spec,
        sources: {},
        topics,
        tables: Object.fromEntries(Object.entries(spec.tables).filter(([name]) => used.has(name))),
        ...(entry ? stageSource(checked.topology, group, entry.id) : {}),
        ...(named ? namedSource(checked.topology, group, id) : {}),
      },
    };
    return {
      id,
      checked: {
        ...checked,
        topology,
        sources: new Map(),
        tables: new Map([...checked.tables].filter(([name]) => used.has(name))),
        steps,
        sinks,
        ...(named ? { sourceScope: named.scope } : {}),
        ...(entry ? { sourceScope: entry.scopeOut, entry: entry.id, entryInputs: flowsOf(entry).length } : {}),
      },
    };
  });
}

/** The variables of a flow: a source's, or a step's output. */
function flowScope(checked: CheckedTopology, flow: string) {
  if (flow === SOURCE_STAGE) return checked.sourceScope;
  return checked.sources.get(flow)?.scope ?? checked.steps.find((s) => s.id === flow)!.scopeOut;
}

/** The source and changelog of the stage of source `name` under spec.sources. */
function namedSource(t: Topology, group: string, name: string): Pick<Topology['spec'], 'source' | 'state'> {
  return {
    source: { ...t.spec.sources[name]!, group: `${group}.${name}` },
    state: { ...t.spec.state, topic: t.spec.state.topic ? `${t.spec.state.topic}.${name}` : `${group}.${name}.state` },
  };
}

/** The source and changelog of the stage after boundary step `stepId`. */
function stageSource(t: Topology, group: string, stepId: string): Pick<Topology['spec'], 'source' | 'state'> {
  const { eventTime: _eventTime, partitionedBy: _partitionedBy, ...source } = t.spec.source;
  return {
    // Event time comes along in each record's value; the watermark rules stay the topology's.
    source: {
      ...source,
      topic: repartitionTopic(group, stepId),
      group: stageGroup(group, stepId),
      key: { format: 'string' },
      value: { format: 'json', subjects: 'TopicName', schemas: [] },
      start: 'earliest',
    },
    state: {
      ...t.spec.state,
      topic: t.spec.state.topic ? `${t.spec.state.topic}.${stepId}` : `${group}.${stepId}.state`,
    },
  };
}

/**
 * A stage writing one transaction per batch cannot also write ClickHouse or a Kafka sink outside the transaction:
 * the boundary steps (repartition, join, merge) and sinks that share a stage writing into one asking for
 * exactly-once and cannot join it.
 */
export function exactlyOnceConflicts(
  checked: Pick<CheckedTopology, 'steps' | 'sinks'>,
): Array<{ step: CheckedStep; sink: CheckedSink }> {
  const of = stageIds(checked);
  const byId = new Map(checked.steps.map((s) => [s.id, s]));
  const out: Array<{ step: CheckedStep; sink: CheckedSink }> = [];
  for (const step of checked.steps.filter(isBoundary)) {
    if (!(step.config as BoundaryConfig).exactlyOnce) continue;
    const writers = new Set(flowsOf(step).map((f) => writerStage(of, byId, f)));
    for (const sink of checked.sinks)
      if (writers.has(of.get(sink.id)!) && sink.spec.producer?.(sink.config) !== 'transactional')
        out.push({ step, sink });
  }
  return out;
}

/** Expressions compared as written, spaces aside. */
const sameExpr = (a: string, b: string) => a.replace(/\s+/g, '') === b.replace(/\s+/g, '');

/**
 * The steps with a repartition step inserted before each stateful one whose state key is not what its records are
 * partitioned by (its source's `partitionedBy`, or the key of the nearest boundary step upstream), as Kafka
 * Streams inserts repartition topics. Without `partitionedBy` nothing is known of a source's key: no insertion.
 */
export function withRepartitions(
  steps: CheckedStep[],
  partitionedBy: Record<string, string | undefined>,
): CheckedStep[] {
  const out: CheckedStep[] = [];
  const byId = new Map<string, CheckedStep>();
  /** What the records reaching a step from `from` are partitioned by (a join's or a merge's key: the first). */
  const keyAt = (from: string): string | undefined => {
    let at = from;
    for (let s = byId.get(at); s; s = byId.get(at)) {
      if (isBoundary(s)) return s.spec.partitionKeys!(s.config as never)[0];
      at = s.from;
    }
    return partitionedBy[at];
  };
  for (const step of steps) {
    const wanted = step.spec.stateKey?.(step.config as never);
    const at = keyAt(step.from);
    if (wanted !== undefined && at !== undefined && !sameExpr(wanted, at) && !sameExpr(wanted, 'key')) {
      const inserted: CheckedStep = {
        id: `${step.id}-by-key`,
        kind: repartition.kind,
        spec: repartition as unknown as CheckedStep['spec'],
        config: repartition.config.parse({ key: wanted }),
        description: `inserted: ${step.kind} ${step.id} keeps its state by ${wanted}, the records are keyed by ${at}`,
        path: step.path,
        from: step.from,
        scopeIn: step.scopeIn,
        scopeOut: step.scopeIn,
      };
      out.push(inserted);
      byId.set(inserted.id, inserted);
      const moved = { ...step, from: inserted.id };
      out.push(moved);
      byId.set(moved.id, moved);
      continue;
    }
    out.push(step);
    byId.set(step.id, step);
  }
  return out;
}
