// `pipelines saga show <topology> <saga id>`: one saga's state and its timeline across topics.
import { join, resolve } from 'node:path';
import { RegistryClient } from '../codec/index.ts';
import { runSagaDemo } from '../demo/order-saga.ts';
import { connectionsFrom } from '../kafka/connection.ts';
import { textTable } from '../observe/text-table.ts';
import { loadPlan } from '../runtime/load.ts';
import type { Plan } from '../runtime/plan.ts';
import { type SagaView, sagaStepOf, sagaTimeline } from '../runtime/saga-timeline.ts';
import type { SagaConfig } from '../steps/saga/config.ts';
import { type Command, parseOptions, usageError, userError } from './args.ts';

const usage = `usage: pipelines saga show <topology.yaml> <saga id> [--step <id>] [--group <group>] [--json]
       pipelines saga demo [--orders N] [--failure-rate R] [--loss-rate R] [--timeout 2s] [--seed N]
  show: the saga's state (from the state changelog of --group, default spec.source.group) and every record keyed
  by its id on the inbox and on the topics its messages go to, in time order
  demo: the order fulfilment saga and its simulated participants on the local stack, on topics of their own;
  prints the outcomes and one compensated saga (PIPELINES_DEMO_DIR: where the logs go, default .local/demo)
  --brokers, --registry override PIPELINES_BROKERS, PIPELINES_REGISTRY_URL`;

export const saga: Command = {
  summary: 'show one saga (its state, its commands and replies across topics), or run the saga demo',
  help: usage,
  async run(args) {
    const { values, positionals } = parseOptions(args, {
      step: { type: 'string' },
      group: { type: 'string' },
      json: { type: 'boolean', default: false },
      orders: { type: 'string', default: '300' },
      'failure-rate': { type: 'string', default: '0.2' },
      'loss-rate': { type: 'string', default: '0.05' },
      timeout: { type: 'string', default: '2s' },
      seed: { type: 'string', default: '1' },
      brokers: { type: 'string' },
      registry: { type: 'string' },
    });
    const [action, file, id] = positionals;
    if (action === 'demo') return demo(values);
    if (action !== 'show') throw usageError(`expected 'show' or 'demo', not '${action ?? ''}'\n${usage}`);
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
    process.stdout.write(sagaText(plan, step, id, view));
    return 0;
  },
};

/** One saga as `saga show` prints it: its state, then its timeline. */
export function sagaText(plan: Plan, step: string, id: string, view: SagaView): string {
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
  return `${out.join('\n')}\n`;
}

async function demo(v: Record<string, string | boolean | undefined>): Promise<number> {
  const num = (name: string, min: number, max: number) => {
    const n = Number(v[name]);
    if (!Number.isFinite(n) || n < min || n > max)
      throw usageError(`--${name}: a number from ${min} to ${max}, not '${v[name]}'`);
    return n;
  };
  const orders = num('orders', 1, 1_000_000);
  if (!/^\d+(ms|s|m)$/.test(String(v.timeout)))
    throw usageError(`--timeout: a duration such as 2s, not '${v.timeout}'`);
  const root = resolve(import.meta.dirname, '../..');
  const out = (text: string) => process.stdout.write(text);
  const r = await runSagaDemo({
    orders,
    seed: num('seed', 0, 2 ** 31),
    failureRate: num('failure-rate', 0, 1),
    lossRate: num('loss-rate', 0, 0.5),
    timeout: String(v.timeout),
    root,
    dir: resolve(process.env.PIPELINES_DEMO_DIR || join(root, '.local/demo')),
    out,
  });
  if (r.code !== 0 || !r.compensated) return r.code;
  const file = join(root, 'topologies/order-fulfilment.yaml');
  const plan = await loadPlan(file, { env: { ...process.env, ...r.topics } });
  const conn = connectionsFrom(process.env);
  const view = await sagaTimeline(conn.kafka, new RegistryClient(conn.registry), plan, {
    id: r.compensated,
    step: 'fulfilment',
  });
  out(`\none compensated saga, as \`pipelines saga show\` prints it (with the run's topics in the environment):\n\n`);
  out(sagaText(plan, 'fulfilment', r.compensated, view));
  return 0;
}
