// Every step kind and every sink kind, listed once: the composition root of the topology format. Adding a
// kind means adding its folder or file and a line here; nothing registers itself.
import { clickhouse } from '../sinks/clickhouse/spec.ts';
import { kafka } from '../sinks/kafka/spec.ts';
import type { SinkSpec } from '../sinks/spec.ts';
import { aggregate } from '../steps/aggregate.ts';
import { dedupe } from '../steps/dedupe.ts';
import { enrich } from '../steps/enrich.ts';
import { explode } from '../steps/explode.ts';
import { filter } from '../steps/filter.ts';
import { fold } from '../steps/fold.ts';
import { join } from '../steps/join.ts';
import { map } from '../steps/map.ts';
import { merge } from '../steps/merge.ts';
import { moduleStep } from '../steps/module.ts';
import { repartition } from '../steps/repartition.ts';
import { saga } from '../steps/saga/spec.ts';
import type { StepSpec } from '../steps/step.ts';

export const steps = [
  filter,
  map,
  explode,
  enrich,
  repartition,
  merge,
  join,
  aggregate,
  fold,
  dedupe,
  saga,
  moduleStep,
] as const;

export type StepKind = (typeof steps)[number]['kind'];

export const stepsByKind: ReadonlyMap<string, StepSpec> = new Map(steps.map((s) => [s.kind, s as unknown as StepSpec]));

export const sinks = [clickhouse, kafka] as const;

export const sinksByKind: ReadonlyMap<string, SinkSpec> = new Map(sinks.map((s) => [s.kind, s as unknown as SinkSpec]));
