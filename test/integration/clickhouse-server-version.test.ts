// A ClickHouse server older than the sink supports (the stack's Debian server is 18.16) is refused at start with
// one line that says which version it found and what to do, before any DDL is sent.
import { spawnSync } from 'node:child_process';

const url = process.env.PIPELINES_CLICKHOUSE_SERVER_URL ?? 'http://127.0.0.1:18123';

test('pipelines run against an 18.16 server: one line naming the version and the fix, exit 1', () => {
  const r = spawnSync(
    process.execPath,
    ['pipelines/cli/main.ts', 'run', 'topologies/order-status.yaml', '--no-metrics'],
    {
      encoding: 'utf8',
      env: { ...process.env, PIPELINES_CLICKHOUSE_URL: url, ORDERS_TOPIC: `version-check-${Date.now()}` },
      timeout: 120_000,
    },
  );
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(
    /pipelines run: error: ClickHouse at .* is 18\.16\.\d+; the sink needs 24\.8 or later .*unset PIPELINES_CLICKHOUSE_URL/,
  );
  expect(r.stderr).not.toMatch(/internal error|Unknown identifier|\n\s+at /);
}, 150_000);

test('clickhouse plan --live against an 18.16 server: the same line, exit 1, no DDL printed', () => {
  const r = spawnSync(
    process.execPath,
    ['pipelines/cli/main.ts', 'clickhouse', 'plan', 'topologies/order-status.yaml', '--live'],
    { encoding: 'utf8', env: { ...process.env, PIPELINES_CLICKHOUSE_URL: url }, timeout: 60_000 },
  );
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/error: ClickHouse at .* is 18\.16\.\d+; the sink needs 24\.8 or later/);
  expect(r.stdout).not.toMatch(/CREATE TABLE/);
}, 90_000);
