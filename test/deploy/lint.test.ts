// The deploy lints of `pipelines validate --deploy`: clean on the example topologies deployed as rendered, and each
// one raised by a topology changed to break it.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { deployLint } from '../../pipelines/deploy/lint.ts';
import { loadPlan } from '../../pipelines/runtime/load.ts';
import { changelogTopic } from '../../pipelines/state/changelog.ts';
import { ROOT, TOPOLOGIES } from './tools.ts';

const load = async (name: string) => {
  const plan = await loadPlan(join(ROOT, 'topologies', `${name}.yaml`), { env: {} });
  return { t: structuredClone(plan.topology), hasState: plan.hasState };
};
const codes = (issues: { code: string }[]) => issues.map((i) => i.code);

describe('deploy lint', () => {
  test.each(TOPOLOGIES.map((f) => f.replace(/^.*\/|\.yaml$/g, '')))('%s: clean with a ClickHouse server', async (n) => {
    const { t, hasState } = await load(n);
    expect(deployLint(t, { embeddedClickHouse: false, hasState })).toEqual([]);
  });

  test('ClickHouse sinks on the embedded engine with more than one worker', async () => {
    const { t, hasState } = await load('order-analytics');
    const scaled = deployLint(t, { embeddedClickHouse: true, hasState });
    expect(codes(scaled)).toEqual(['deploy-embedded-replicas']);
    expect(scaled[0]!.message).toMatch(/^3 workers \(up to the source partitions/);
    expect(deployLint(t, { embeddedClickHouse: true, hasState, replicas: 1 })).toEqual([]);
    // Kafka-only topologies do not care.
    const forward = await load('order-forward');
    expect(deployLint(forward.t, { embeddedClickHouse: true, hasState: forward.hasState })).toEqual([]);
  });

  test('more workers than partitions', async () => {
    const { t, hasState } = await load('order-forward');
    const issues = deployLint(t, { embeddedClickHouse: false, hasState, replicas: 5 });
    expect(codes(issues)).toEqual(['deploy-replicas-over-partitions']);
    expect(issues[0]!.message).toMatch(/5 workers for 3 partitions .*2 would sit idle/);
  });

  test("a state changelog whose partitions differ from the source's", async () => {
    const { t, hasState } = await load('order-status');
    expect(hasState).toBe(true);
    t.spec.topics[changelogTopic(t)] = { partitions: 6, replicas: 3, cleanup: 'compact' };
    const issues = deployLint(t, { embeddedClickHouse: false, hasState });
    expect(codes(issues)).toEqual(['deploy-changelog-partitions']);
    expect(issues[0]!.path).toBe(`spec.topics.${changelogTopic(t)}.partitions`);
  });

  test('topics not declared: the source, a table, a Kafka sink, the dead letters', async () => {
    const { t, hasState } = await load('order-enrichment');
    const undeclared = [t.spec.source.topic, t.spec.tables.products!.topic, t.spec.errors.deadLetter!];
    for (const topic of undeclared) delete t.spec.topics[topic];
    const issues = deployLint(t, { embeddedClickHouse: false, hasState });
    expect(issues.map((i) => [i.code, i.path])).toEqual([
      ['deploy-topic-undeclared', 'spec.source.topic'],
      ['deploy-topic-undeclared', 'spec.tables.products.topic'],
      ['deploy-topic-undeclared', 'spec.errors.deadLetter'],
    ]);
  });

  test('pipelines validate --deploy prints them as warnings and still exits 0', () => {
    const r = spawnSync(
      process.execPath,
      ['pipelines/cli/main.ts', 'validate', '--deploy', '--replicas', '4', 'topologies/order-forward.yaml'],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      /order-forward.yaml: warning: 4 workers for 3 partitions.*\[deploy-replicas-over-partitions\]/,
    );
    expect(r.stdout).toContain('topologies/order-forward.yaml: ok');
  });
});
