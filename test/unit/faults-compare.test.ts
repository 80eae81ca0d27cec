// The fault run's accounting: lost and duplicated counted per key, rows compared whole.
import { compareCounts, compareRows } from '../faults/compare.ts';

test('counts short of expected are lost, counts beyond it or under unknown keys are duplicated', () => {
  const expected = new Map([
    ['a', 3],
    ['b', 1],
    ['c', 2],
  ]);
  const actual = new Map([
    ['a', 3],
    ['b', 2],
    ['x', 1],
  ]);
  expect(compareCounts(expected, actual)).toEqual({ expected: 6, lost: 2, duplicated: 2, exact: false });
  expect(compareCounts(expected, new Map(expected))).toEqual({ expected: 6, lost: 0, duplicated: 0, exact: true });
});

test('a row whose counts match but whose revenue differs is not exact, and is neither lost nor duplicated', () => {
  const row = { window_start: '2026-01-01T00:00:00.000Z', segment: 'gold', revenue: 10, orders: 2 };
  const same = compareRows('revenue_by_segment_1m', [row], [{ ...row }]);
  expect(same).toEqual({ expected: 2, lost: 0, duplicated: 0, exact: true });
  const off = compareRows('revenue_by_segment_1m', [row], [{ ...row, revenue: 11 }]);
  expect(off).toEqual({ expected: 2, lost: 0, duplicated: 0, exact: false });
  const twice = compareRows('revenue_by_segment_1m', [row], [{ ...row, orders: 4 }]);
  expect(twice).toEqual({ expected: 2, lost: 0, duplicated: 2, exact: false });
});
