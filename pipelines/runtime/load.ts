// Load + validate + compile: a topology file in, a plan (or every problem, located) out.
import type { CheckedTopology } from '../compile/checked.ts';
import { type CompileOptions, checkFile } from '../compile/compile.ts';
import { topicSpecOf } from '../compile/schema.ts';
import { stagesOf } from '../compile/stages.ts';
import type { TopicSpec } from '../kafka/topics.ts';
import { changelogTopicSpec } from '../state/changelog.ts';
import type { Diagnostic } from '../topology/diagnostics.ts';
import { hasErrors, TopologyError } from '../topology/diagnostics.ts';
import type { SourceFile } from '../topology/yaml.ts';
import { Plan } from './plan.ts';

export interface LoadResult {
  diagnostics: Diagnostic[];
  checked?: CheckedTopology;
  plan?: Plan;
  /** The modules the steps run, by step id (loaded with the plan). */
  modules?: ReadonlyMap<string, (...a: never[]) => unknown>;
}

/** Validates a topology file and, when it has no errors, compiles it (loading the modules its steps run). */
export async function loadTopology(file: string, opts: CompileOptions = {}): Promise<LoadResult> {
  const { diagnostics, checked, source } = checkFile(file, opts);
  if (!checked || hasErrors(diagnostics)) return { diagnostics, ...(checked ? { checked } : {}) };
  const modules = new Map<string, (...a: never[]) => unknown>();
  for (const step of checked.steps) {
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
      else modules.set(step.id, fn as (...a: never[]) => unknown);
    } catch (err) {
      problem('ref-module-not-found', `cannot load '${c.path}': ${(err as Error).message.split('\n')[0]}`);
    }
  }
  if (hasErrors(diagnostics)) return { diagnostics, checked };
  try {
    return { diagnostics, checked, plan: new Plan(checked, modules), modules };
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

/**
 * The plans a worker runs, one per stage (compile/stages.ts): the topology's own plan when it has no repartition
 * step. `group` is the consumer group the worker joins (default: the topology's); internal names follow it.
 */
export async function loadStages(
  file: string,
  opts: CompileOptions = {},
  group?: string,
): Promise<Array<{ id: string; plan: Plan }>> {
  const r = await loadTopology(file, opts);
  if (!r.plan || !r.checked) throw new TopologyError(r.diagnostics);
  const stages = stagesOf(r.checked, group ?? r.checked.topology.spec.source.group);
  if (stages.length === 1) return [{ id: stages[0]!.id, plan: r.plan }];
  return stages.map((s) => ({ id: s.id, plan: new Plan(s.checked, r.modules!) }));
}

/**
 * Every topic a topology owns, run by the stages `loadStages` gave: those it declares, its repartition topics and
 * the state changelog of each stage that keeps state (the worker creates the last two itself when missing).
 */
export function ownedTopics(stages: ReadonlyArray<{ plan: Plan }>): TopicSpec[] {
  const out = new Map<string, TopicSpec>();
  for (const { plan } of stages) {
    const t = plan.topology;
    for (const [name, d] of Object.entries(t.spec.topics)) out.set(name, topicSpecOf(name, d));
    if (plan.hasState && t.spec.state.changelog) {
      const c = changelogTopicSpec(t, 1, t.spec.source.group);
      out.set(c.name, c);
    }
  }
  return [...out.values()];
}
