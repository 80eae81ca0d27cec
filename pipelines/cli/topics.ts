// `pipelines topics apply <file...>`: creates or grows the topics the topologies declare (spec.topics), their
// repartition topics, and the state changelog of each stage with stateful steps.

import { connectionsFrom } from '../kafka/connection.ts';
import { applyTopics, type TopicSpec } from '../kafka/topics.ts';
import { loadStages, ownedTopics } from '../runtime/load.ts';
import { parseOptions, usage } from './args.ts';

export const HELP =
  'topics apply <topology.yaml...> [--dry-run] [--max-replicas N] [--brokers host:port]\n' +
  '  --max-replicas caps replicas and min.insync.replicas to a small cluster (1 for the local stack)';

export async function topics(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, {
    'dry-run': { type: 'boolean' },
    'max-replicas': { type: 'string' },
    brokers: { type: 'string' },
  });
  const [action, ...files] = positionals;
  if (action !== 'apply' || files.length === 0) throw usage(HELP);
  const maxReplicas = values['max-replicas'];
  const specs = new Map<string, TopicSpec>();
  for (const file of files) for (const spec of ownedTopics(await loadStages(file))) specs.set(spec.name, spec);
  const conn = connectionsFrom(process.env, { brokers: values.brokers });
  const dryRun = values['dry-run'] === true;
  const changes = await applyTopics(conn.kafka, [...specs.values()], {
    dryRun,
    ...(maxReplicas ? { maxReplicas: Number(maxReplicas) } : {}),
  });
  for (const c of changes) process.stdout.write(`${c.action.padEnd(15)} ${c.topic}: ${c.detail}\n`);
  if (dryRun) process.stdout.write('(dry run: nothing changed)\n');
  return changes.some((c) => c.action === 'conflict') ? 1 : 0;
}
