// The literal list of subcommands: adding one means adding a line here.
import type { Command } from './args.ts';
import { clickhouse } from './clickhouse.ts';
import { demo } from './demo.ts';
import { dlq } from './dlq.ts';
import { generate } from './generate.ts';
import { graph } from './graph.ts';
import { replay } from './replay.ts';
import { run } from './run.ts';
import { statusCommand } from './status.ts';
import { test } from './test.ts';
import { topics } from './topics.ts';
import { validate } from './validate.ts';

export const commands: Record<string, Command> = {
  demo,
  dlq,
  validate: { summary: 'check topology files; every problem as file:line:col', run: validate },
  graph: { summary: 'draw a topology (tree, or --format mermaid)', run: graph },
  test: { summary: 'run the declarative test cases (*.test.yaml) of topologies', run: test },
  run: { summary: 'run a topology: --dry-run --input events.jsonl prints what each sink gets', run },
  status: { summary: 'one screen on a running worker: --url http://127.0.0.1:19100 [--watch]', run: statusCommand },
  topics: {
    summary: 'create or grow the topics topologies declare (apply [--dry-run] [--max-replicas N])',
    run: topics,
  },
  clickhouse,
  replay,
  generate: { summary: 'regenerate the editor JSON Schemas and topologies/REFERENCE.md', run: generate },
};
