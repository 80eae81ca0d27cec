// The oldest ClickHouse server the sink accepts: versions compared by their numeric parts.
import { MIN_SERVER_VERSION, parseVersion, supported } from '../../pipelines/sinks/clickhouse/version.ts';

test.each([
  ['18.16.1', false],
  ['24.3.5.47', false],
  ['24.8.0', true],
  ['24.8.14.39', true],
  ['24.10.1', true],
  ['25.3.2.1-lts', true],
  ['26.7.1.1', true],
  ['9.1', false],
])('%s supported: %s', (text, ok) => {
  expect(supported(parseVersion(text))).toBe(ok);
});

test('the minimum is a real LTS line', () => {
  expect(MIN_SERVER_VERSION).toEqual([24, 8]);
});
