// The oldest ClickHouse server the sink runs on, checked once at start: an older one rejects the DDL or, worse,
// accepts inserts without the deduplication the exactly-once protocol rests on.
import type { ClickHouse } from './connection.ts';
import { ClickHouseSinkError, classifyError } from './errors.ts';

/**
 * 24.8 LTS: the oldest long-term-support line still maintained when this was written. What decides it is older:
 * insert_deduplication_token (22.2), non_replicated_deduplication_window, query parameters, DateTime64 and column
 * comments all predate it; anything newer is what the embedded engine (26.x) has, where every test runs.
 */
export const MIN_SERVER_VERSION = [24, 8] as const;

/** Numeric parts of a version string such as 24.8.14.39 (non-numeric suffixes ignored). */
export function parseVersion(text: string): number[] {
  return text
    .trim()
    .split('.')
    .map((p) => Number.parseInt(p, 10))
    .filter((n) => Number.isFinite(n));
}

export function supported(version: readonly number[], min: readonly number[] = MIN_SERVER_VERSION): boolean {
  for (let i = 0; i < min.length; i++) {
    const v = version[i] ?? 0;
    if (v !== min[i]) return v > min[i]!;
  }
  return true;
}

/** Refuses a server older than MIN_SERVER_VERSION with one line; the embedded engine is always current. */
export async function assertServerSupported(ch: ClickHouse): Promise<void> {
  if (ch.kind !== 'server') return;
  let text: string;
  try {
    const r = await ch.client.query({ query: 'SELECT version()', format: 'TabSeparated' });
    text = await r.text();
  } catch (err) {
    throw classifyError(err, { operation: 'query' });
  }
  const version = parseVersion(text);
  if (!supported(version))
    throw new ClickHouseSinkError({
      code: 'CH_SERVER_TOO_OLD',
      retriable: false,
      message:
        `ClickHouse at ${ch.description} is ${text.trim()}; the sink needs ${MIN_SERVER_VERSION.join('.')} or later ` +
        '(insert deduplication tokens, DateTime64, query parameters): upgrade the server, or unset ' +
        'PIPELINES_CLICKHOUSE_URL to use the embedded engine',
    });
}
