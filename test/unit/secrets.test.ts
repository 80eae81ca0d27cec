// Nothing that came from the environment comes back in a message: broker and URL passwords, secret-named
// variables, values a topology interpolated with ${VAR}; and the last log lines survive a kill -9.
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { keepEnvironmentSecrets, mask } from '../../pipelines/secrets.ts';
import { topology, writeTopology } from './topology/helpers.ts';

const ROOT = resolve(__dirname, '../..');
function run(args: string[], env: Record<string, string>) {
  const r = spawnSync(process.execPath, args, {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, NODE_NO_WARNINGS: '1', ...env },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const cli = (env: Record<string, string>, ...args: string[]) =>
  run([join(ROOT, 'pipelines/cli/main.ts'), ...args], env);

test('the password of a broker address is not echoed in the error about it', () => {
  const r = cli({ PIPELINES_BROKERS: 'user:hunter2@127.0.0.1:1' }, 'topics', 'apply', 'topologies/order-forward.yaml');
  expect(r.code).not.toBe(0);
  expect(r.err).toMatch(/^pipelines topics: error: PIPELINES_BROKERS: 'user:\*\*\*@127\.0\.0\.1:1' has credentials/);
  expect(r.err + r.out).not.toContain('hunter2');
});

// biome-ignore lint/suspicious/noTemplateCurlyInString: ${VAR} is the topology's syntax
test('a ${VAR} value expanded into an expression is named by its variable in diagnostics, not shown', () => {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: ${VAR} is the topology's syntax
  const file = writeTopology(topology({ steps: '    - filter: event.data.orderId == ${ORDER_FILTER}' }));
  const r = cli({ ORDER_FILTER: 'hunter2' }, 'validate', file);
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/unknown variable '\$\{ORDER_FILTER\}'/);
  expect(r.out + r.err).not.toContain('hunter2');
});

test('secret-named variables and URL passwords are masked by value; file locations and plain values are not', () => {
  keepEnvironmentSecrets({
    PIPELINES_CLICKHOUSE_PASSWORD: 's3cr3t-ch',
    PIPELINES_REGISTRY_URL: 'https://reg:regpass@registry.example:8081',
    PIPELINES_KAFKA_SSL_KEY_LOCATION: '/etc/keys/client.key',
    PIPELINES_CLICKHOUSE_FLUSH_ROWS: '50000',
  });
  expect(mask('auth failed for s3cr3t-ch at https://reg:regpass@registry.example:8081')).toBe(
    'auth failed for *** at https://reg:***@registry.example:8081',
  );
  expect(mask('cannot read /etc/keys/client.key; flush at 50000 rows')).toBe(
    'cannot read /etc/keys/client.key; flush at 50000 rows',
  );
});

test('log lines are masked, and written before a kill -9 can lose them', () => {
  const script = [
    "import { createLogger } from './pipelines/observe/log.ts';",
    "const log = createLogger('t');",
    "log.error({ broker: process.env.PIPELINES_BROKERS }, 'last words before the kill');",
    "process.kill(process.pid, 'SIGKILL');",
  ].join('\n');
  const r = run(['--input-type=module', '-e', script], { PIPELINES_BROKERS: 'u:hunter2@127.0.0.1:9' });
  expect(r.err).toContain('last words before the kill');
  expect(r.err).toContain('u:***@127.0.0.1:9');
  expect(r.err).not.toContain('hunter2');
});
