// Deploy lints: what makes a valid topology undeployable as rendered (`pipelines deploy render`), said by
// `pipelines validate` before anyone deploys it. Warnings: the topology runs fine as one local worker.

import type { loadPlan } from '../runtime/load.ts';
import { changelogTopic } from '../state/changelog.ts';

type Topology = Awaited<ReturnType<typeof loadPlan>>['topology'];

/** The deploy lints, by code: what each one means. */
export const DEPLOY_LINTS = {
  'deploy-embedded-replicas': 'ClickHouse sinks on the embedded engine, and more than one worker.',
  'deploy-replicas-over-partitions': 'More workers than the source topic has partitions.',
  'deploy-changelog-partitions': "The state changelog's partitions differ from the source's.",
  'deploy-topic-undeclared': 'A topic the topology reads or writes is not in spec.topics.',
} as const;

export type DeployLintCode = keyof typeof DEPLOY_LINTS;

export interface DeployIssue {
  code: DeployLintCode;
  severity: 'warning';
  message: string;
  /** Where in the document, as a dotted path (`spec.sinks.0.clickhouse`). */
  path: string;
  hint?: string;
}

export interface DeployLintOptions {
  /** Workers the deployment runs; default: up to the source's partitions (what the lag scaler may reach). */
  replicas?: number;
  /** The ClickHouse sinks use the embedded engine (PIPELINES_CLICKHOUSE_URL unset). */
  embeddedClickHouse: boolean;
  /** The topology has fold, aggregate or dedupe steps (a state changelog). */
  hasState: boolean;
}

/** Every topic the topology consumes or produces, with where it is named. */
function usedTopics(t: Topology): { topic: string; path: string }[] {
  const used = [{ topic: t.spec.source.topic, path: 'spec.source.topic' }];
  for (const [name, table] of Object.entries(t.spec.tables))
    used.push({ topic: table.topic, path: `spec.tables.${name}.topic` });
  t.spec.sinks.forEach((item, i) => {
    for (const [kind, config] of Object.entries(item as Record<string, { topic?: unknown }>)) {
      if (kind === 'kafka' && typeof config?.topic === 'string')
        used.push({ topic: config.topic, path: `spec.sinks.${i}.kafka.topic` });
    }
  });
  if (t.spec.errors.deadLetter) used.push({ topic: t.spec.errors.deadLetter, path: 'spec.errors.deadLetter' });
  return used;
}

export function deployLint(t: Topology, o: DeployLintOptions): DeployIssue[] {
  const issues: DeployIssue[] = [];
  const warn = (code: DeployLintCode, path: string, message: string, hint?: string) =>
    issues.push({ code, severity: 'warning', message, path, ...(hint ? { hint } : {}) });
  const source = t.spec.topics[t.spec.source.topic];
  const partitions = source?.partitions;
  const replicas = o.replicas ?? partitions ?? 1;

  const clickhouse = t.spec.sinks.findIndex((item) => 'clickhouse' in (item as object));
  if (clickhouse >= 0 && o.embeddedClickHouse && replicas > 1) {
    warn(
      'deploy-embedded-replicas',
      `spec.sinks.${clickhouse}.clickhouse`,
      `${replicas} workers${o.replicas ? '' : ' (up to the source partitions, as the lag scaler may)'} on the embedded ClickHouse engine: each keeps read models of its own, which split and over-count after rebalances`,
      'set PIPELINES_CLICKHOUSE_URL to a ClickHouse server for the workers, or run exactly one',
    );
  }
  if (o.replicas !== undefined && partitions !== undefined && o.replicas > partitions) {
    warn(
      'deploy-replicas-over-partitions',
      'spec.source.topic',
      `${o.replicas} workers for ${partitions} partitions of '${t.spec.source.topic}': ${o.replicas - partitions} would sit idle`,
      `at most ${partitions}, or more partitions in spec.topics`,
    );
  }
  if (o.hasState && t.spec.state.changelog) {
    const name = changelogTopic(t);
    const declared = t.spec.topics[name];
    if (declared && partitions !== undefined && declared.partitions !== partitions) {
      warn(
        'deploy-changelog-partitions',
        `spec.topics.${name}.partitions`,
        `the state changelog '${name}' has ${declared.partitions} partitions and the source ${partitions}: the state of source partition p is kept in changelog partition p`,
        `give it ${partitions} partitions`,
      );
    }
  }
  const seen = new Set<string>();
  for (const { topic, path } of usedTopics(t)) {
    if (t.spec.topics[topic] || seen.has(topic)) continue;
    seen.add(topic);
    warn(
      'deploy-topic-undeclared',
      path,
      `topic '${topic}' is not declared in spec.topics: no KafkaTopic is rendered for it, and its partitions, replicas and retention are left to the broker`,
      `declare it: spec.topics: { ${topic}: { partitions: …, replicas: … } }`,
    );
  }
  return issues;
}
