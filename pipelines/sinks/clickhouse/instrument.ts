// ClickHouse insert metrics without touching the sink: the connection's client is wrapped so that every
// insert request (one attempt, the offsets log's included) reports its sink, rows, time and error code.

import type { PipelineEvents } from '../../observe/metrics.ts';
import type { ClickHouse } from './connection.ts';
import { classifyError } from './errors.ts';
import { OFFSETS_TABLE } from './offsets.ts';

type InsertEvents = Pick<PipelineEvents, 'insertStarted' | 'inserted' | 'insertFailed'>;

/**
 * The same connection, its `client.insert` measured. `sinks` maps a table name (without database) to the
 * sink that writes it; the offsets log's rows name their sink themselves. Other tables are left unmeasured.
 */
export function instrumentClickHouse(
  ch: ClickHouse,
  events: InsertEvents,
  sinks: ReadonlyMap<string, string>,
): ClickHouse {
  const target = ch.client;
  const insert = target.insert.bind(target);
  const measured = async (params: Parameters<typeof insert>[0]) => {
    const table = String(params.table).split('.').pop()!.replace(/`/g, '');
    const values = params.values as unknown;
    const isOffsets = table === OFFSETS_TABLE;
    const sink = isOffsets ? ((values as Array<{ sink?: string }>)[0]?.sink ?? undefined) : sinks.get(table);
    if (sink === undefined) return insert(params);
    const rows = !isOffsets && Array.isArray(values) ? values.length : 0;
    events.insertStarted({ sink, rows });
    const started = performance.now();
    try {
      const r = await insert(params);
      events.inserted({ sink, rows, ms: performance.now() - started });
      return r;
    } catch (err) {
      const { code } = classifyError(err, { table, operation: 'insert' });
      events.insertFailed({ sink, rows, ms: performance.now() - started, code });
      throw err;
    }
  };
  const client = new Proxy(target, {
    get(t, prop) {
      if (prop === 'insert') return measured;
      const v = Reflect.get(t, prop, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
  return { client, kind: ch.kind, description: ch.description, close: () => ch.close() };
}
