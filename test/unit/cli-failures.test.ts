// What the CLI prints for a failure: one `error:` line saying what and what to check; a bug says it is one; the
// trace only with PIPELINES_LOG_LEVEL=debug.
import { failureText } from '../../pipelines/cli/args.ts';
import { PipelinesError } from '../../pipelines/errors.ts';
import { ClickHouseSinkError } from '../../pipelines/sinks/clickhouse/errors.ts';

const env = {};

test('a PipelinesError (and every class built on it) is one line, its message', () => {
  expect(failureText('run', new PipelinesError('CONFIG', 'no brokers'), env)).toBe(
    'pipelines run: error: no brokers\n',
  );
  const ch = new ClickHouseSinkError({ code: 'CH_UNKNOWN_COLUMN', message: 'table t: no column zz', retriable: false });
  expect(failureText('run', ch, env)).toBe('pipelines run: error: table t: no column zz\n');
});

test('an option parseArgs refused is the user’s to fix too', () => {
  const e = Object.assign(new TypeError("Unknown option '--x'"), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' });
  expect(failureText('run', e, env)).toBe("pipelines run: error: Unknown option '--x'\n");
});

test('a Kafka client error (its code a number) that says the broker is away: one line, what to check', () => {
  const e = Object.assign(new Error('Local: Broker transport failure'), { code: -195, origin: 'local' });
  expect(failureText('topics', e, env)).toBe(
    'pipelines topics: error: Kafka: Local: Broker transport failure (is the broker up, at PIPELINES_BROKERS or --brokers?)\n',
  );
});

test('another Kafka client error (a bad TLS setting): one line naming the settings, no stack', () => {
  const e = Object.assign(new Error('ssl.ca.location failed: BIO lib'), { code: -186, origin: 'local' });
  expect(failureText('run', e, env)).toBe(
    'pipelines run: error: Kafka client: ssl.ca.location failed: BIO lib (check PIPELINES_BROKERS and the PIPELINES_KAFKA_* settings)\n',
  );
});

test('a bug says so in one line; the trace comes with PIPELINES_LOG_LEVEL=debug', () => {
  const e = new TypeError("Cannot read properties of undefined (reading 'x')");
  expect(failureText('run', e, env)).toBe(
    "pipelines run: internal error: Cannot read properties of undefined (reading 'x') (PIPELINES_LOG_LEVEL=debug shows where)\n",
  );
  const debug = failureText('run', e, { PIPELINES_LOG_LEVEL: 'debug' });
  expect(
    debug.startsWith("pipelines run: internal error: Cannot read properties of undefined (reading 'x')\nTypeError"),
  ).toBe(true);
  expect(debug).toMatch(/\n\s+at /);
});

test('something thrown that is not an Error is reported, not rethrown', () => {
  expect(failureText('run', 'boom', env)).toBe(
    'pipelines run: internal error: boom (PIPELINES_LOG_LEVEL=debug shows where)\n',
  );
});
