// The schema of one step or sink item, by kind (used to validate an item once its kind is known).
import { z } from 'zod';
import { sinksByKind, stepsByKind } from './kinds.ts';

export const STEP_META_KEYS = ['id', 'description', 'from'] as const;

export const stepMeta = {
  id: z
    .string()
    .regex(/^[a-z][a-z0-9-]*$/, 'expected lower-case letters, digits and dashes')
    .optional()
    .describe('Stable id of the step (metric labels, state names). Default: `<kind>-<derived from config>`.'),
  description: z.string().optional().describe('What this step is for (shown by `pipelines graph`).'),
  from: z
    .string()
    .optional()
    .describe(
      'Id of the step whose output this step reads (or `source`); default: the step before it. Branches the flow.',
    ),
};

const cache = new Map<string, z.ZodType>();

export function StepStrict(what: 'step' | 'sink', kind: string): z.ZodType {
  const k = `${what}:${kind}`;
  let s = cache.get(k);
  if (!s) {
    const spec = what === 'step' ? stepsByKind.get(kind)! : sinksByKind.get(kind)!;
    s =
      what === 'step' ? z.strictObject({ ...stepMeta, [kind]: spec.config }) : z.strictObject({ [kind]: spec.config });
    cache.set(k, s);
  }
  return s;
}
