// Values into ClickHouse types (times in ms to each date type, decimals rounded to their scale, wrappers such as
// SimpleAggregateFunction and Nullable seen through), and the progress line of `pipelines replay`.
import { ReplayProgress } from '../../pipelines/cli/replay.ts';
import { rowEncoder, valueType } from '../../pipelines/sinks/clickhouse/table.ts';

test.each([
  ['String', 'String'],
  ['Nullable(Decimal(18, 2))', 'Decimal(18, 2)'],
  ["SimpleAggregateFunction(max, Nullable(DateTime64(3, 'UTC')))", "DateTime64(3, 'UTC')"],
  ['LowCardinality(Nullable(String))', 'String'],
  ["SimpleAggregateFunction(max, Enum8('PLACED' = 1, 'PAID' = 2))", "Enum8('PLACED' = 1, 'PAID' = 2)"],
])('valueType(%s) = %s', (type, want) => {
  expect(valueType(type)).toBe(want);
});

test('rowEncoder: times, decimals rounded (ClickHouse would truncate), integers, nulls, JSON for objects', () => {
  const encode = rowEncoder([
    { name: 'at', type: "SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC')))" },
    { name: 'minute', type: "DateTime('UTC')" },
    { name: 'revenue', type: 'SimpleAggregateFunction(sum, Decimal(38, 2))' },
    { name: 'd64', type: 'Decimal64(3)' },
    { name: 'n', type: 'UInt64' },
    { name: 'status', type: "SimpleAggregateFunction(max, Enum8('PLACED' = 1))" },
    { name: 'items', type: 'String' },
    { name: 'missing', type: 'Nullable(String)' },
  ]);
  expect(
    encode({ at: 61000, minute: 60000, revenue: 12.349999999, d64: 1.00049, n: 3.9, status: 'PLACED', items: [1] }),
  ).toEqual([61000, 60, 12.35, 1, 3, 'PLACED', '[1]', null]);
  expect(encode({ at: null, revenue: 0.1 + 0.2 })[0]).toBeNull();
  expect(encode({ revenue: 0.1 + 0.2 })[2]).toBe(0.3);
});

test('ReplayProgress: offsets done of end offsets, rate and ETA', () => {
  let now = 0;
  const p = new ReplayProgress(
    [
      { partition: 0, low: 0n, high: 100n },
      { partition: 1, low: 50n, high: 150n },
      { partition: 2, low: 0n, high: 0n },
    ],
    () => now,
  );
  expect(p.total).toBe(200);
  now = 2000;
  p.batch(0, '49');
  p.batch(1, '99');
  p.batch(7, '10'); // not a partition of the topic at start
  expect(p.done).toBe(100);
  expect(p.line(10)).toBe('[#####.....] 50.0% 100/200 offsets, 50/s, ETA 2s');
  p.batch(1, '500'); // past the end seen at start: counted up to it
  expect(p.line()).toBe('75.0% 150/200 offsets, 75/s, ETA 1s');
});
