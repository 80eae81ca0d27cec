// Every environment value a command reads is checked when it is read: a bad one ends the command at once (before
// any service is contacted), with one line naming the variable, the value (its password masked), what is wrong and
// what to write. Nothing runs here: every address below is unreachable, so only a check can end the command quickly.
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
const SECRET = 'kafka-pw-4711';
/** Nothing listens on port 1: a command that got past the checks would retry the services, not end in one line. */
const QUIET = {
  PIPELINES_BROKERS: '127.0.0.1:1',
  PIPELINES_REGISTRY_URL: 'http://127.0.0.1:1',
  PIPELINES_KAFKA_SASL_PASSWORD: SECRET,
  PIPELINES_STARTUP_TIMEOUT_MS: '2000',
};

function cli(env: Record<string, string>, ...args: string[]) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PIPELINES_')));
  const r = spawnSync(process.execPath, [join(ROOT, 'pipelines/cli/main.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...clean, NODE_NO_WARNINGS: '1', ...QUIET, ...env },
  });
  return { code: r.status, err: r.stderr };
}

const run = (topology: string) => ['run', `topologies/${topology}.yaml`, '--no-metrics'];

const cases: Array<[string, Record<string, string>, string[], string]> = [
  [
    'a broker port out of range',
    { PIPELINES_BROKERS: '127.0.0.1:99999' },
    run('order-forward'),
    "pipelines run: error: PIPELINES_BROKERS: port 99999 of '127.0.0.1:99999' is out of range (1-65535): write host:port",
  ],
  [
    'an empty broker entry',
    { PIPELINES_BROKERS: '127.0.0.1:1,,127.0.0.1:2' },
    run('order-forward'),
    "pipelines run: error: PIPELINES_BROKERS: an empty entry in '127.0.0.1:1,,127.0.0.1:2': write host:port[,host:port] without an empty entry",
  ],
  [
    'a broker with a password in it',
    { PIPELINES_BROKERS: `alice:${SECRET}@kafka:9092` },
    run('order-forward'),
    "pipelines run: error: PIPELINES_BROKERS: 'alice:***@kafka:9092' has credentials: write host:port, and the user and password in PIPELINES_KAFKA_SASL_USERNAME and PIPELINES_KAFKA_SASL_PASSWORD",
  ],
  [
    'a ClickHouse URL without a scheme',
    { PIPELINES_CLICKHOUSE_URL: 'localhost:8123' },
    run('order-analytics'),
    "pipelines run: error: PIPELINES_CLICKHOUSE_URL: 'localhost:8123' has no scheme: write http://localhost:8123",
  ],
  [
    'a ClickHouse URL with a password and a port out of range',
    { PIPELINES_CLICKHOUSE_URL: `http://bob:${SECRET}@ch:99999` },
    run('order-analytics'),
    "pipelines run: error: PIPELINES_CLICKHOUSE_URL: port 99999 of 'http://bob:***@ch:99999' is out of range (1-65535): write http://host:port, e.g. http://127.0.0.1:8123",
  ],
  [
    'a registry URL without a scheme',
    { PIPELINES_REGISTRY_URL: 'localhost:18081' },
    run('order-forward'),
    "pipelines run: error: PIPELINES_REGISTRY_URL: 'localhost:18081' has no scheme: write http://localhost:18081",
  ],
  [
    'a start-up timeout that is not a number',
    { PIPELINES_STARTUP_TIMEOUT_MS: '5m' },
    run('order-forward'),
    "pipelines run: error: PIPELINES_STARTUP_TIMEOUT_MS: '5m' is not a whole number above 0: write milliseconds, e.g. 300000",
  ],
  [
    'a ClickHouse flush delay that is not a number',
    { PIPELINES_CLICKHOUSE_FLUSH_MS: 'soon' },
    run('order-analytics'),
    "pipelines run: error: PIPELINES_CLICKHOUSE_FLUSH_MS: 'soon' is not a whole number above 0: write milliseconds, e.g. 1000",
  ],
  [
    'an unknown log level',
    { PIPELINES_LOG_LEVEL: 'inof' },
    run('order-forward'),
    "pipelines run: error: PIPELINES_LOG_LEVEL: unknown value 'inof' (did you mean 'info'?): write one of fatal, error, warn, info, debug, trace, silent",
  ],
  [
    'an unknown security protocol',
    { PIPELINES_KAFKA_SECURITY_PROTOCOL: 'sasl_tls' },
    run('order-forward'),
    "pipelines run: error: PIPELINES_KAFKA_SECURITY_PROTOCOL: unknown value 'sasl_tls' (did you mean 'sasl_ssl'?): write one of plaintext, ssl, sasl_plaintext, sasl_ssl",
  ],
  [
    'a CA file that does not exist',
    { PIPELINES_KAFKA_SSL_CA_LOCATION: '/nonexistent/ca.pem' },
    run('order-forward'),
    "pipelines run: error: PIPELINES_KAFKA_SSL_CA_LOCATION: no file at '/nonexistent/ca.pem': write the path of the CA certificate (PEM), or probe",
  ],
  [
    'a metrics address with a port out of range',
    { PIPELINES_METRICS_ADDRESS: '127.0.0.1:70000' },
    ['run', 'topologies/order-forward.yaml'],
    "pipelines run: error: PIPELINES_METRICS_ADDRESS: port 70000 of '127.0.0.1:70000' is out of range (0-65535): write host:port, :port or port, e.g. 0.0.0.0:19100",
  ],
  [
    'validate --deploy with a ClickHouse URL without a scheme',
    { PIPELINES_CLICKHOUSE_URL: 'ch:8123' },
    ['validate', '--deploy', 'topologies/order-analytics.yaml'],
    "pipelines validate: error: PIPELINES_CLICKHOUSE_URL: 'ch:8123' has no scheme: write http://ch:8123",
  ],
  [
    'a group instance id Kafka would refuse',
    { PIPELINES_GROUP_INSTANCE_ID: 'order analytics/0' },
    run('order-forward'),
    "pipelines run: error: PIPELINES_GROUP_INSTANCE_ID: 'order analytics/0' is not a valid group instance id: write at most 249 letters, digits, dots, dashes and underscores (a pod name, e.g. order-analytics-0)",
  ],
  [
    'a ClickHouse cluster without a server',
    { PIPELINES_CLICKHOUSE_CLUSTER: 'prod' },
    run('order-analytics'),
    'pipelines run: error: PIPELINES_CLICKHOUSE_CLUSTER: is set without PIPELINES_CLICKHOUSE_URL (the embedded engine has no cluster): write PIPELINES_CLICKHOUSE_URL too (a server of the cluster), or unset PIPELINES_CLICKHOUSE_CLUSTER',
  ],
  [
    'status with a URL without a scheme',
    { PIPELINES_STATUS_URL: '127.0.0.1:19100' },
    ['status'],
    "pipelines status: error: PIPELINES_STATUS_URL: '127.0.0.1:19100' has no scheme: write http://127.0.0.1:19100",
  ],
];

test.each(cases)('%s: one line, exit 1, the variable and the fix named', (_what, env, args, line) => {
  const r = cli(env, ...args);
  expect({ code: r.code, err: r.err }).toEqual({ code: 1, err: `${line}\n` });
  expect(r.err).not.toMatch(/\n\s+at /);
  expect(r.err).not.toContain(SECRET);
});

test('a flag that stands in for a variable is named as the flag', () => {
  const r = cli({}, 'run', 'topologies/order-forward.yaml', '--no-metrics', '--brokers', 'kafka');
  expect(r).toEqual({
    code: 1,
    err: "pipelines run: error: --brokers: 'kafka' is not host:port: write host:port, e.g. kafka:9092\n",
  });
});
