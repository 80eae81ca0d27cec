// `pipelines dlq inspect|redrive <topic>`: look at dead letters decoded, or send them back for another try.
import { RegistryClient } from '../codec/index.ts';
import { connectionsFrom } from '../kafka/connection.ts';
import { inspectDeadLetters, redriveDeadLetters } from '../runtime/dead-letters.ts';
import { type Command, parseOptions } from './args.ts';

const usage = `usage: pipelines dlq inspect <topic> [--limit N] [--json]
       pipelines dlq redrive <topic> [--to <topic>] [--step <step id>]
  --brokers, --registry override PIPELINES_BROKERS, PIPELINES_REGISTRY_URL`;

export const dlq: Command = {
  summary: 'inspect dead letters (decoded, with provenance) or redrive them to their source topic',
  help: usage,
  async run(args) {
    const { values, positionals } = parseOptions(args, {
      limit: { type: 'string' },
      json: { type: 'boolean', default: false },
      to: { type: 'string' },
      step: { type: 'string' },
      brokers: { type: 'string' },
      registry: { type: 'string' },
    });
    const [action, topic] = positionals;
    if (!topic || (action !== 'inspect' && action !== 'redrive')) {
      process.stderr.write(`${usage}\n`);
      return 2;
    }
    const conn = connectionsFrom(process.env, { brokers: values.brokers, registry: values.registry });
    if (action === 'redrive') {
      const r = await redriveDeadLetters(conn.kafka, topic, { to: values.to, filterStep: values.step });
      const targets = Object.entries(r.byTopic).map(([t, n]) => `${n} to ${t}`);
      process.stdout.write(
        `redrove ${r.redriven} dead letter(s)${targets.length ? ` (${targets.join(', ')})` : ''}` +
          `${r.skipped ? `, skipped ${r.skipped}` : ''}` +
          `${r.withoutValue ? ` (${r.withoutValue} without their value: too large to keep; see pipelines.dlq.valueOmitted)` : ''}\n`,
      );
      return 0;
    }
    const registry = new RegistryClient(conn.registry);
    const limit = values.limit === undefined ? undefined : Number(values.limit);
    const letters = await inspectDeadLetters(conn.kafka, registry, topic, { limit });
    if (values.json) {
      for (const l of letters) process.stdout.write(`${JSON.stringify(l)}\n`);
      return 0;
    }
    for (const l of letters) {
      const p = l.provenance;
      process.stdout.write(
        `#${l.partition}@${l.offset} key=${l.key ?? '∅'}\n` +
          (p
            ? `  from ${p.topic}/${p.partition}@${p.offset} (topology ${p.topology}, step ${p.step})\n` +
              `  ${p.errorClass}: ${p.errorMessage}\n`
            : '  (no provenance headers)\n') +
          (l.decodeError
            ? `  value not decodable (${l.decodeError}): base64 ${String(l.value).slice(0, 120)}\n`
            : `  value ${JSON.stringify(l.value)}\n`),
      );
    }
    process.stdout.write(`${letters.length} dead letter(s) in ${topic}\n`);
    return 0;
  },
};
