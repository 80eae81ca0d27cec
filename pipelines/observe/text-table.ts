// Columns aligned for a terminal: the status summary, query results and the demo's report.

export type Align = 'left' | 'right';

/** Rows under a header, two spaces between columns; by default the first column left, the others right. */
export function textTable(
  head: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  align?: readonly Align[],
): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const side = (i: number): Align => align?.[i] ?? (i === 0 ? 'left' : 'right');
  const fmt = (r: readonly string[]) =>
    head
      .map((_, i) => (side(i) === 'left' ? (r[i] ?? '').padEnd(widths[i]!) : (r[i] ?? '').padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [fmt(head), ...rows.map(fmt)];
}

/** Numbers to the right, anything else to the left: how a column of query results reads best. */
export function alignByContent(rows: ReadonlyArray<readonly string[]>, columns: number): Align[] {
  return Array.from({ length: columns }, (_, i) =>
    rows.length > 0 && rows.every((r) => /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(r[i] ?? '')) ? 'right' : 'left',
  );
}
