// Tables managed from the topology, on embedded ClickHouse: the plan of the example topologies creates every
// read-model table; a new column is added; a type change or a drop is refused without the flag and applied with
// it; an engine or sorting key change is refused with the rebuild command; the CLI prints and applies the plan.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import type { TableSpec } from '../../pipelines/sinks/clickhouse/ddl.ts';
import { applyTablePlan, planTable } from '../../pipelines/sinks/clickhouse/schema.ts';

jest.setTimeout(120_000);

const spec: TableSpec = {
  table: 'people',
  columns: [
    { name: 'id', type: 'String' },
    { name: 'n', type: 'UInt32' },
  ],
  engine: { kind: 'SummingMergeTree' },
  orderBy: ['id'],
};

test('pipelines clickhouse plan/apply on the example topologies (a child process per data directory)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pipelines-ch-schema-cli-'));
  try {
    const env = { ...process.env, PIPELINES_CLICKHOUSE_PATH: dir };
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['pipelines/cli/main.ts', 'clickhouse', ...args], { env, encoding: 'utf8' });
    // Offline by default: the DDL from the topology alone, and the data directory not even created.
    const offline = join(dir, 'never-opened');
    const alone = spawnSync(
      process.execPath,
      ['pipelines/cli/main.ts', 'clickhouse', 'plan', 'topologies/order-analytics.yaml'],
      {
        env: { ...env, PIPELINES_CLICKHOUSE_PATH: offline },
        encoding: 'utf8',
      },
    );
    expect(alone.status).toBe(0);
    expect(alone.stdout).toMatch(/the DDL from the topology alone/);
    expect(alone.stdout.match(/: create\n/g)).toHaveLength(5);
    expect(existsSync(offline)).toBe(false);
    const plan = cli('plan', 'topologies/order-analytics.yaml', '--live');
    expect(plan.status).toBe(0);
    expect(plan.stdout).toMatch(/-- revenue_by_segment_1m: create/);
    expect(plan.stdout).toMatch(/ENGINE = SummingMergeTree\nPARTITION BY toYYYYMM\(window_start\)/);
    expect(plan.stdout).toMatch(/-- customer_ltv: create[\s\S]*SimpleAggregateFunction\(min, DateTime64/);
    const apply = cli('apply', 'topologies/order-analytics.yaml');
    expect(apply.stdout).toMatch(/applied 5 statement\(s\)/);
    const again = cli('plan', 'topologies/order-analytics.yaml', '--live');
    expect(again.stdout.match(/: up to date/g)).toHaveLength(5);
    const status = cli('apply', 'topologies/order-status.yaml', '--into', 'v2');
    expect(status.stdout).toMatch(/-- order_summary_v2: create/);
    expect(status.status).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Both commands are in the literal table.
  const help = spawnSync(process.execPath, ['pipelines/cli/main.ts', 'help'], { encoding: 'utf8' });
  expect(help.stdout).toMatch(/\n {2}clickhouse +plan or apply[\s\S]*\n {2}replay +rebuild/);
});

test('a ClickHouse server that does not answer: one line naming what failed, exit 1, no stack', () => {
  const r = spawnSync(
    process.execPath,
    ['pipelines/cli/main.ts', 'clickhouse', 'plan', 'topologies/order-analytics.yaml', '--live'],
    {
      env: { ...process.env, PIPELINES_CLICKHOUSE_URL: 'http://127.0.0.1:1' },
      encoding: 'utf8',
    },
  );
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/^pipelines clickhouse: error: ClickHouse unavailable .*ECONNREFUSED 127\.0\.0\.1:1\n$/);
});

test('migrations: add freely, refuse destructive changes unless allowed, refuse engine and key changes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pipelines-ch-schema-'));
  const ch = openClickHouse({ kind: 'embedded', path: dir });
  try {
    const created = await planTable(ch, spec);
    expect(created.exists).toBe(false);
    await applyTablePlan(ch, created);
    expect((await planTable(ch, spec)).statements).toEqual([]);

    const added = await planTable(ch, { ...spec, columns: [...spec.columns, { name: 'city', type: 'String' }] });
    expect(added.statements).toEqual(['ALTER TABLE `people` ADD COLUMN IF NOT EXISTS `city` String']);
    await applyTablePlan(ch, added);

    const changed = { ...spec, columns: [spec.columns[0]!, { name: 'n', type: 'UInt64' }] };
    const refused = await planTable(ch, changed);
    expect(refused.refused.map((r) => r.reason)).toEqual([
      'column "n" would change type UInt32 -> UInt64 (destructive: --allow-destructive)',
      'column "city" would be dropped (destructive: --allow-destructive)',
    ]);
    await expect(applyTablePlan(ch, refused)).rejects.toMatchObject({
      code: 'CH_SCHEMA_CHANGE_REFUSED',
      table: 'people',
      column: 'n',
    });
    const allowed = await planTable(ch, changed, { allowDestructive: true });
    expect(allowed.refused).toEqual([]);
    await applyTablePlan(ch, allowed);
    expect((await planTable(ch, changed)).statements).toEqual([]);

    const rekeyed = await planTable(ch, { ...changed, engine: { kind: 'MergeTree' }, orderBy: ['n', 'id'] });
    expect(rekeyed.refused.map((r) => r.reason).join('\n')).toMatch(
      /engine SummingMergeTree -> MergeTree cannot change in place; rebuild[\s\S]*ORDER BY \(id\) -> \(n, id\)[\s\S]*--swap/,
    );
  } finally {
    await ch.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
