// On demand: the rebalance-commits scenario (test/integration/rebalance-commits.ts) with a bigger backlog.
//   node test/faults/rebalance-commits.ts [orders=400000] [boundSeconds=90]
// Prints the committed offsets against the ends every 5 s; exits 1 if a partition stays behind.
import { rebalanceCommits } from '../integration/rebalance-commits.ts';

const orders = Number(process.argv[2] ?? 400_000);
const boundMs = Number(process.argv[3] ?? 90) * 1000;
const behind = await rebalanceCommits({ orders, boundMs, out: (line) => console.log(line) });
if (behind.length > 0) {
  console.log(`FAIL: partitions ${behind.join(', ')} not committed to their end ${boundMs / 1000} s after the kill`);
  process.exitCode = 1;
} else console.log('ok: every partition committed to its end');
