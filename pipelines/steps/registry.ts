// Every step kind, listed once. Adding a kind means adding its file and a line here; nothing registers itself.
import { aggregate } from './aggregate.ts';
import { dedupe } from './dedupe.ts';
import { enrich } from './enrich.ts';
import { filter } from './filter.ts';
import { fold } from './fold.ts';
import { map } from './map.ts';
import { moduleStep } from './module.ts';
import type { StepSpec } from './step.ts';

export const steps = [filter, map, enrich, aggregate, fold, dedupe, moduleStep] as const;

export type StepKind = (typeof steps)[number]['kind'];

export const stepsByKind: ReadonlyMap<string, StepSpec> = new Map(steps.map((s) => [s.kind, s as unknown as StepSpec]));
