// What a fault run's outputs hold against the load generator's oracle: per read model, the counts lost and the
// counts there twice (or more), row by row, and whether every row (revenue included) is exactly as expected.

export const ANALYTICS_MODELS = ['revenue_by_segment_1m', 'revenue_by_product_1m', 'customer_ltv'] as const;

/** The column of each read model that counts source records: what a lost or doubled record moves. */
const COUNTS: Record<(typeof ANALYTICS_MODELS)[number], string> = {
  revenue_by_segment_1m: 'orders',
  revenue_by_product_1m: 'lines',
  customer_ltv: 'orders',
};

/** Rows are keyed by their string columns that are not times of a first or last order. */
const KEY_COLUMNS: Record<(typeof ANALYTICS_MODELS)[number], string[]> = {
  revenue_by_segment_1m: ['window_start', 'segment'],
  revenue_by_product_1m: ['window_start', 'product_id'],
  customer_ltv: ['customer_id'],
};

export interface Tally {
  expected: number;
  lost: number;
  duplicated: number;
  exact: boolean;
}

type Row = Record<string, unknown>;

/** Expected and actual counts per key, summed into lost (short of expected) and duplicated (beyond it). */
export function compareCounts(expected: ReadonlyMap<string, number>, actual: ReadonlyMap<string, number>): Tally {
  let lost = 0;
  let duplicated = 0;
  let total = 0;
  for (const [key, n] of expected) {
    total += n;
    const got = actual.get(key) ?? 0;
    if (got < n) lost += n - got;
    else duplicated += got - n;
  }
  for (const [key, got] of actual) if (!expected.has(key)) duplicated += got;
  return { expected: total, lost, duplicated, exact: lost === 0 && duplicated === 0 };
}

export function compareRows(model: (typeof ANALYTICS_MODELS)[number], expected: Row[], actual: Row[]): Tally {
  const counts = (rows: Row[]) =>
    new Map(rows.map((r) => [KEY_COLUMNS[model].map((c) => r[c]).join('|'), Number(r[COUNTS[model]])]));
  const tally = compareCounts(counts(expected), counts(actual));
  return { ...tally, exact: JSON.stringify(expected) === JSON.stringify(actual) };
}
