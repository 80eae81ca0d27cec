// The commit stall across rebalances (issue 12): workers join a group with a backlog, one is killed -9 while the
// group rebalances, and every partition's commit must reach the end once the group settles. Before commits waited
// for the broker's answer, the refused ones were taken as made and 3 to 5 of the 6 partitions stayed behind.
import { rebalanceCommits } from './rebalance-commits.ts';

jest.setTimeout(240_000);

test('a member killed mid-rebalance: every partition is committed to its end once the group settles', async () => {
  const lines: string[] = [];
  const behind = await rebalanceCommits({ orders: 250_000, boundMs: 90_000, out: (l) => lines.push(l) });
  expect({ behind, lines }).toEqual({ behind: [], lines });
});
