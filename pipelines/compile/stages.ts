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

interface RepartitionConfig {
  key: string;
  partitions?: number;
  exactlyOnce: boolean;
}

const isRepartition = (s: CheckedStep) => s.kind === 'repartition';

/** The stage each step and sink runs in, by id: a step reading a repartition step starts that step's stage. */
export function stageIds(checked: Pick<CheckedTopology, 'steps' | 'sinks'>): Map<string, string> {
  const byId = new Map(checked.steps.map((s) => [s.id, s]));
  const of = new Map<string, string>();
  const entered = (from: string): string => {
    if (from === SOURCE_STAGE) return SOURCE_STAGE;
    const step = byId.get(from)!;
    return isRepartition(step) ? step.id : of.get(step.id)!;
  };
  for (const s of checked.steps) of.set(s.id, entered(s.from));
  for (const s of checked.sinks) of.set(s.id, entered(s.from));
  return of;
}

/** The internal topics of a topology run by `group`: one per repartition step, made as the source topic is. */
export function internalTopics(checked: CheckedTopology, group: string): Topology['spec']['topics'] {
  const spec = checked.topology.spec;
  const source = spec.topics[spec.source.topic];
  const out: Topology['spec']['topics'] = {};
  for (const s of checked.steps.filter(isRepartition)) {
    const c = s.config as RepartitionConfig;
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

/** The stages of a topology run by consumer group `group`: one (the topology itself) without repartition steps. */
export function stagesOf(checked: CheckedTopology, group: string): Stage[] {
  const repartitions = checked.steps.filter(isRepartition);
  if (repartitions.length === 0) return [{ id: SOURCE_STAGE, checked }];
  const of = stageIds(checked);
  const internal = internalTopics(checked, group);
  const spec = checked.topology.spec;
  const topics = { ...spec.topics, ...internal };
  return [SOURCE_STAGE, ...repartitions.map((r) => r.id)].map((id) => {
    const entry = repartitions.find((r) => r.id === id);
    // The step a stage begins after reads as its source.
    const from = (f: string) => (f === id ? SOURCE_STAGE : f);
    const steps = checked.steps
      .filter((s) => of.get(s.id) === id && !isRepartition(s))
      .map((s) => ({ ...s, from: from(s.from) }));
    const sinks: CheckedSink[] = checked.sinks
      .filter((s) => of.get(s.id) === id)
      .map((s) => ({ ...s, from: from(s.from) }));
    for (const r of repartitions.filter((r) => of.get(r.id) === id)) {
      const c = r.config as RepartitionConfig;
      sinks.push({
        id: r.id,
        kind: repartitionSink.kind,
        spec: repartitionSink as unknown as SinkSpec,
        config: { topic: repartitionTopic(group, r.id), key: c.key, exactlyOnce: c.exactlyOnce },
        path: r.path,
        from: from(r.from),
        scope: r.scopeIn,
      });
    }
    const used = new Set(steps.flatMap((s) => s.spec.tables?.(s.config as never) ?? []));
    const topology: Topology = {
      ...checked.topology,
      spec: {
        ...spec,
        topics,
        tables: Object.fromEntries(Object.entries(spec.tables).filter(([name]) => used.has(name))),
        ...(entry ? stageSource(checked.topology, group, entry.id) : {}),
      },
    };
    return {
      id,
      checked: {
        ...checked,
        topology,
        tables: new Map([...checked.tables].filter(([name]) => used.has(name))),
        steps,
        sinks,
        ...(entry ? { sourceScope: entry.scopeOut, entry: entry.id } : {}),
      },
    };
  });
}

/** The source and changelog of the stage after repartition step `stepId`. */
function stageSource(t: Topology, group: string, stepId: string): Pick<Topology['spec'], 'source' | 'state'> {
  const { eventTime: _eventTime, ...source } = t.spec.source;
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
 * the repartition steps and sinks that share a stage with one asking for exactly-once and cannot join it.
 */
export function exactlyOnceConflicts(
  checked: Pick<CheckedTopology, 'steps' | 'sinks'>,
): Array<{ step: CheckedStep; sink: CheckedSink }> {
  const of = stageIds(checked);
  const out: Array<{ step: CheckedStep; sink: CheckedSink }> = [];
  for (const step of checked.steps.filter(isRepartition)) {
    if (!(step.config as RepartitionConfig).exactlyOnce) continue;
    const stage = of.get(step.id);
    for (const sink of checked.sinks)
      if (of.get(sink.id) === stage && sink.spec.producer?.(sink.config) !== 'transactional') out.push({ step, sink });
  }
  return out;
}

/** Expressions compared as written, spaces aside. */
const sameExpr = (a: string, b: string) => a.replace(/\s+/g, '') === b.replace(/\s+/g, '');

/**
 * The steps with a repartition step inserted before each stateful one whose state key is not what its records are
 * partitioned by (the source's `partitionedBy`, or the key of the nearest repartition step upstream), as Kafka
 * Streams inserts repartition topics. Without `partitionedBy` nothing is known of the source's key: no insertion.
 */
export function withRepartitions(steps: CheckedStep[], partitionedBy: string | undefined): CheckedStep[] {
  if (partitionedBy === undefined) return steps;
  const out: CheckedStep[] = [];
  const byId = new Map<string, CheckedStep>();
  /** What the records reaching a step from `from` are partitioned by. */
  const keyAt = (from: string): string => {
    for (let s = byId.get(from); s; s = byId.get(s.from))
      if (isRepartition(s)) return (s.config as RepartitionConfig).key;
    return partitionedBy;
  };
  for (const step of steps) {
    const wanted = step.spec.stateKey?.(step.config as never);
    const at = keyAt(step.from);
    if (wanted !== undefined && !sameExpr(wanted, at) && !sameExpr(wanted, 'key')) {
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
