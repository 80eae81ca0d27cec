// Load + validate + compile: a topology file in, a plan (or every problem, located) out.
import { type CheckedTopology, type CompileOptions, checkFile } from '../compile/compile.ts';
import type { Diagnostic } from '../topology/diagnostics.ts';
import { hasErrors, TopologyError } from '../topology/diagnostics.ts';
import type { SourceFile } from '../topology/yaml.ts';
import { Plan } from './plan.ts';

export interface LoadResult {
  diagnostics: Diagnostic[];
  checked?: CheckedTopology;
  plan?: Plan;
}

/** Validates a topology file and, when it has no errors, compiles it (loading the modules its steps run). */
export async function loadTopology(file: string, opts: CompileOptions = {}): Promise<LoadResult> {
  const { diagnostics, checked, source } = checkFile(file, opts);
  if (!checked || hasErrors(diagnostics)) return { diagnostics, ...(checked ? { checked } : {}) };
  const modules = new Map<number, (...a: never[]) => unknown>();
  for (const [i, step] of checked.steps.entries()) {
    const c = step.spec.moduleFile?.(step.config as never);
    if (!c) continue;
    const at = [...step.path, step.kind, ...c.at];
    const problem = (code: 'ref-module-not-found' | 'ref-module-not-function', message: string) =>
      diagnostics.push((source as SourceFile).diagnostic(code, message, at));
    try {
      // An absolute path: Node's ESM loader and a CommonJS require both take it.
      const abs = `${checked.dir}/${c.path}`;
      const mod = (await import(abs)) as Record<string, unknown>;
      const fn =
        mod[c.export] ?? (c.export === 'default' ? (mod.default as Record<string, unknown>)?.default : undefined);
      if (typeof fn !== 'function')
        problem('ref-module-not-function', `'${c.path}' has no exported function '${c.export}'`);
      else modules.set(i, fn as (...a: never[]) => unknown);
    } catch (err) {
      problem('ref-module-not-found', `cannot load '${c.path}': ${(err as Error).message.split('\n')[0]}`);
    }
  }
  if (hasErrors(diagnostics)) return { diagnostics, checked };
  try {
    return { diagnostics, checked, plan: new Plan(checked, modules) };
  } catch (err) {
    diagnostics.push(
      (source as SourceFile).diagnostic('internal', `cannot compile the plan: ${(err as Error).message}`, []),
    );
    return { diagnostics, checked };
  }
}

/** The call a worker makes: a plan, or a TopologyError listing every problem. */
export async function loadPlan(file: string, opts: CompileOptions = {}): Promise<Plan> {
  const r = await loadTopology(file, opts);
  if (!r.plan) throw new TopologyError(r.diagnostics);
  return r.plan;
}
