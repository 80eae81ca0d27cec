// What the CLI prints for a failure: one line for what the user can fix, a stack only for a bug.
import { failureText } from '../../pipelines/cli/args.ts';
import { PipelinesError } from '../../pipelines/errors.ts';
import { ClickHouseSinkError } from '../../pipelines/sinks/clickhouse/errors.ts';

test('a PipelinesError (and every class built on it) is one line, its message', () => {
  expect(failureText('run', new PipelinesError('CONFIG', 'no brokers'))).toBe('pipelines run: no brokers\n');
  const ch = new ClickHouseSinkError({ code: 'CH_UNKNOWN_COLUMN', message: 'table t: no column zz', retriable: false });
  expect(failureText('run', ch)).toBe('pipelines run: table t: no column zz\n');
});

test('an option parseArgs refused is the user’s to fix too', () => {
  const e = Object.assign(new TypeError("Unknown option '--x'"), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' });
  expect(failureText('run', e)).toBe("pipelines run: Unknown option '--x'\n");
});

test('a Kafka client error (its code a number) that says the broker is away: one line, what to check', () => {
  const e = Object.assign(new Error('Local: Broker transport failure'), { code: -195 });
  expect(failureText('topics', e)).toBe(
    'pipelines topics: Kafka: Local: Broker transport failure (is the broker up, at PIPELINES_BROKERS or --brokers?)\n',
  );
});

test('any other error, a numeric code included, is a bug: reported with its stack, not a crash of the report', () => {
  const e = Object.assign(new Error('Broker: Unknown topic or partition'), { code: 3 });
  const text = failureText('topics', e);
  expect(text.startsWith('pipelines topics: internal error\n')).toBe(true);
  expect(text).toContain('Unknown topic or partition');
});

test('something thrown that is not an Error is reported, not rethrown', () => {
  expect(failureText('run', 'boom')).toBe('pipelines run: internal error\nboom\n');
});
