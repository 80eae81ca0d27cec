// `module`: custom logic as a synchronous TypeScript (or JavaScript) function in a file beside the topology.
import { z } from 'zod';
import type { Scope } from '../topology/types.ts';
import { parseTypeName } from '../topology/types.ts';
import { type CheckContext, defineStep, type RelPath, slug, type Vars } from './step.ts';

export type ModuleFunction = (
  vars: Readonly<Vars>,
  ctx: { readonly time: number; readonly record: { topic: string; partition: number } },
) => Vars | readonly Vars[] | null | undefined;

/** The file and export of a TypeScript function a step runs (the `module` step, `fold.reduce`). */
export const moduleFileFields = {
  path: z
    .string()
    .regex(/\.(ts|js|mjs)$/, 'expected a .ts, .js or .mjs file')
    .describe('File, relative to the topology.'),
  export: z.string().default('default').describe('Name of the exported function.'),
};

export const moduleStep = defineStep({
  kind: 'module',
  summary: 'Run a synchronous TypeScript function from a file beside the topology.',
  description:
    'The file path is relative to the topology file and must stay inside its folder. The named export is ' +
    'called with the variables and `{ time, record }`, and returns the new variables (an object), several ' +
    '(an array), or null to drop the record. It must be synchronous and pure: it is the only code a topology ' +
    'can run. Declare `output` (field: type) so later steps can be checked; without it the variables are ' +
    'assumed unchanged. `validate`, `graph` and `test` load the module to check its export, so its top-level ' +
    'code runs there too: keep it free of effects (no files, network or environment read at import).',
  config: z.strictObject({
    ...moduleFileFields,
    output: z
      .record(z.string(), z.string())
      .optional()
      .describe(
        'The fields the function returns, with types: string, double, bool, bytes, timestamp, dyn, list<T>, map<T>, T?.',
      ),
  }),
  examples: [{ path: './modules/score.ts', export: 'score', output: { orderId: 'string', score: 'double' } }],
  stateful: false,
  describe: (c) => `${c.path}#${c.export}`,
  idHint: (c) =>
    slug(
      `${c.path
        .split('/')
        .pop()!
        .replace(/\.\w+$/, '')}-${c.export}`,
    ),
  moduleFile: (c) => ({ path: c.path, export: c.export, at: ['path'] }),
  check(c, ctx) {
    ctx.file(c.path, ['path']);
    return c.output ? declaredFields(c.output, ctx, ['output']) : ctx.scope;
  },
  create(_c, ctx) {
    const fn = ctx.module as unknown as ModuleFunction;
    return {
      process(vars, rc, out) {
        const r = fn(vars, rc) as unknown;
        if (r === null || r === undefined) return;
        if (typeof (r as Promise<unknown>).then === 'function') throw new Error('module functions must be synchronous');
        if (Array.isArray(r)) for (const v of r) out.emit(v as Vars, rc);
        else out.emit(r as Vars, rc);
      },
    };
  },
});

/** The variables a module declares it returns (`output: { field: type }`), checked. */
export function declaredFields(output: Record<string, string>, ctx: CheckContext, at: RelPath): Scope {
  const out: Scope = {};
  for (const [f, t] of Object.entries(output)) {
    const parsed = parseTypeName(t);
    if (!parsed)
      ctx.report(
        'schema-invalid-value',
        `unknown type '${t}'`,
        [...at, f],
        'string, double, bool, bytes, timestamp, dyn, list<T>, map<T>, T?',
      );
    out[f] = parsed ?? { kind: 'dyn' };
  }
  return out;
}
