// The contract of a sink in a topology file: its config spec, its type check, and the shaping of what it
// receives. Writing to the real service is the sink runtime's job; the plan hands it these outputs.
import { z } from 'zod';
import type { BuildContext, CheckContext, RecordContext, Vars } from '../../steps/step.ts';
import { expression } from '../durations.ts';
import type { Scope } from '../types.ts';

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
}

export interface SinkSpec<S extends z.ZodType = z.ZodType> {
  kind: string;
  summary: string;
  description: string;
  config: S;
  examples: z.input<S>[];
  defaultId(config: z.output<S>): string;
  check(config: z.output<S>, ctx: CheckContext, scope: Scope): void;
  create(config: z.output<S>, ctx: BuildContext): SinkWriter & Record<string, unknown>;
}

export function defineSink<S extends z.ZodType>(spec: SinkSpec<S>): SinkSpec<S> {
  return spec;
}
