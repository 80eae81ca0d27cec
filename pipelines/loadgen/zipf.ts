// Zipf-distributed ranks by inverse CDF, for skewed test data (a few customers place most orders): the weights
// 1/(k+1)^s are summed once, then each uniform draw maps to its rank by binary search over the running sums.

/** Maps a uniform draw in [0, 1) to a rank in [0, n), rank k with probability proportional to 1/(k+1)^s. */
export function zipfRanks(n: number, s: number): (u: number) => number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`zipfRanks: n must be a whole number above 0, not ${n}`);
  if (!(s >= 0) || !Number.isFinite(s)) throw new RangeError(`zipfRanks: the exponent must be 0 or more, not ${s}`);
  const cumulative = new Float64Array(n);
  let total = 0;
  for (let k = 0; k < n; k++) {
    total += (k + 1) ** -s;
    cumulative[k] = total;
  }
  return (u) => {
    const target = u * total;
    // The first rank whose running sum passes the target; u < 1 keeps the target below the last sum.
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid]! > target) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
}
