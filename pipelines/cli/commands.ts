// The literal list of subcommands: adding one means adding a line here.
import type { Command } from './args.ts';
import { clickhouse } from './clickhouse.ts';
import { demo } from './demo.ts';
import { HELP as DEPLOY, deploy } from './deploy.ts';
import { dlq } from './dlq.ts';
import { generate } from './generate.ts';
import { graph } from './graph.ts';
import { HELP as LOADGEN, loadgen } from './loadgen.ts';
import { replay } from './replay.ts';
import { run } from './run.ts';
import { HELP as RUN } from './run-worker.ts';
import { saga } from './saga.ts';
import { HELP as SCHEMAS, schemas } from './schemas.ts';
import { HELP as STATUS, statusCommand } from './status.ts';
import { test } from './test.ts';
import { HELP as TOPICS, topics } from './topics.ts';
import { validate } from './validate.ts';

export const commands: Record<string, Command> = {
  demo,
  dlq,
  validate: {
    summary: 'check topology files; every problem as file:line:col',
    help: 'usage: pipelines validate <topology.yaml>… [--quiet] [--deploy [--replicas N]]',
    run: validate,
  },
  graph: {
    summary: 'draw a topology (tree, or --format mermaid)',
    help: 'usage: pipelines graph <topology.yaml> [--format tree|mermaid]',
    run: graph,
  },
  schemas: {
    summary: 'check that each Avro schema can follow its version at a git revision (--against) and in the registry',
    help: `usage: pipelines ${SCHEMAS}`,
    run: schemas,
  },
  test: {
    summary: 'run the declarative test cases (*.test.yaml) of topologies',
    help: 'usage: pipelines test <file.test.yaml | folder>…',
    run: test,
  },
  run: {
    summary: 'run a topology: --dry-run --input events.jsonl prints what each sink gets',
    help: `usage: pipelines ${RUN}`,
    run,
  },
  status: {
    summary: 'one screen on a running worker: --url http://127.0.0.1:19100 [--watch]',
    help: `usage: pipelines ${STATUS}`,
    run: statusCommand,
  },
  topics: {
    summary: 'create or grow the topics topologies declare (apply [--dry-run] [--max-replicas N])',
    help: `usage: pipelines ${TOPICS}`,
    run: topics,
  },
  loadgen: {
    summary: 'write a seeded order stream and its snapshots to Kafka (--expected: the read models it must give)',
    help: `usage: pipelines ${LOADGEN}`,
    run: loadgen,
  },
  clickhouse,
  replay,
  saga,
  deploy: {
    summary: 'render Kubernetes manifests from topologies (render <files…> --out dir [--check])',
    help: `usage: pipelines ${DEPLOY}`,
    run: deploy,
  },
  generate: {
    summary: 'regenerate the editor JSON Schemas and topologies/REFERENCE.md',
    help: 'usage: pipelines generate [--check] [--dir topologies]',
    run: generate,
  },
};
