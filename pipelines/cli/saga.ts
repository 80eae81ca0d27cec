// `pipelines saga show <topology> <saga id>`: one saga's state and its timeline across topics.
import { RegistryClient } from '../codec/index.ts';
import { connectionsFrom } from '../kafka/connection.ts';
import { textTable } from '../observe/text-table.ts';
import { loadPlan } from '../runtime/load.ts';
import { sagaStepOf, sagaTimeline } from '../runtime/saga-timeline.ts';
import type { SagaConfig } from '../steps/saga/config.ts';
import { type Command, parseOptions, usageError, userError } from './args.ts';

const usage = `usage: pipelines saga show <topology.yaml> <saga id> [--step <id>] [--group <group>] [--json]
  the saga's state (from the state changelog of --group, default spec.source.group) and every record keyed by
  its id on the inbox and on the topics its messages go to, in time order
  --brokers, --registry override PIPELINES_BROKERS, PIPELINES_REGISTRY_URL`;

export const saga: Command = {
  summary: 'show one saga: its state and the timeline of its commands and replies across topics',
  help: usage,
  async run(args) {
    const { values, positionals } = parseOptions(args, {
      step: { type: 'string' },
      group: { type: 'string' },
      json: { type: 'boolean', default: false },
      brokers: { type: 'string' },
      registry: { type: 'string' },
    });
    const [action, file, id] = positionals;
    if (action !== 'show') throw usageError(`expected 'show', not '${action ?? ''}'\n${usage}`);
    if (!file || !id) throw usageError(`a topology file and a saga id are needed\n${usage}`);
    const plan = await loadPlan(file);
    const step = sagaStepOf(plan, values.step);
    const conn = connectionsFrom(process.env, { brokers: values.brokers, registry: values.registry });
    const view = await sagaTimeline(conn.kafka, new RegistryClient(conn.registry), plan, {
      id,
      step,
      ...(values.group ? { group: values.group } : {}),
    });
    if (values.json) {
      process.stdout.write(`${JSON.stringify(view)}\n`);
      return 0;
    }
    if (!view.instance && view.timeline.length === 0)
      throw userError(`no saga '${id}' in ${plan.name} (step ${step}): nothing in its changelog or on its topics`);
    const i = view.instance;
    const iso = (t: number) => new Date(t).toISOString();
    const out: string[] = [];
    if (i) {
      const steps = (plan.checked.steps.find((s) => s.id === step)!.config as SagaConfig).steps;
      const where = i.status === 'running' ? `step ${steps[i.step]?.name ?? i.step}` : '';
      out.push(
        `saga ${i.id} (${plan.name}, step ${step}): ${i.status}${where ? ` at ${where}` : ''}${i.reason ? `: ${i.reason}` : ''}`,
        `  started ${iso(i.startedAt)}, last change ${iso(i.updatedAt)}${i.pending.length ? `, waiting for ${i.pending.join(', ')} (attempt ${i.attempt})` : ''}`,
        `  done: ${i.done.join(', ') || '-'}; undone: ${i.undone.join(', ') || '-'}`,
        `  state: ${JSON.stringify(i.state)}`,
      );
    } else
      out.push(
        `saga ${id} (${plan.name}, step ${step}): not in the state changelog (ended and forgotten, or never started)`,
      );
    out.push('');
    out.push(
      ...textTable(
        ['time', 'dir', 'topic', 'at', 'message', 'id', 'trace'],
        view.timeline.map((e) => [
          iso(e.time),
          e.direction,
          e.topic,
          `${e.partition}@${e.offset}`,
          e.attempt !== undefined && e.attempt > 1 ? `${e.type} (attempt ${e.attempt})` : e.type,
          e.id ?? '',
          e.traceId?.slice(0, 16) ?? '',
        ]),
        ['left', 'left', 'left', 'right', 'left', 'left', 'left'],
      ),
    );
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  },
};
