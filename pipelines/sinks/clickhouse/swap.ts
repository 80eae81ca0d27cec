// Handing a rebuilt table (`pipelines replay --into <suffix> --swap`) to the live sink, in steps that can be
// run again after a crash or an error at any point, table by table:
//   1. mark the rebuilt table with a comment naming the rebuild;
//   2. EXCHANGE it with the live table (RENAME when there is none): atomic per table;
//   3. move the rebuild's offsets-log rows to the live sink (the rebuild wrote under the live insert tokens).
// The mark tells, on a second run, whether step 2 happened (the live name now carries it); rows left under
// the rebuild's key tell that step 3 has not finished. ClickHouse has no statement that exchanges several
// tables atomically, so the tables of a topology are handed over one after the other; a live sink refuses
// to start on a table whose hand-over is unfinished.

import type { ClickHouse } from './connection.ts';
import { qualifiedName, quoteString } from './ddl.ts';
import { ClickHouseSinkError } from './errors.ts';
import { OFFSETS_TABLE } from './offsets.ts';

/** The key of a rebuild's rows in the offsets log, beside the live sink's. */
export const rebuildLogSink = (sinkId: string, suffix: string) => `${sinkId}@rebuild:${suffix}`;

/** A table's name for messages, unquoted. */
const shown = (table: string, database: string | undefined) => (database ? `${database}.${table}` : table);

const MARK = 'pipelines: rebuilt by replay --into ';
const markOf = (suffix: string) => `${MARK}${suffix}`;

export interface SwapTable {
  sinkId: string;
  /** The live table's name. */
  live: string;
  /** The rebuilt table's name (`<live>_<suffix>`). */
  rebuilt: string;
  database?: string;
}

async function one<T>(ch: ClickHouse, query: string): Promise<T | undefined> {
  const rs = await ch.client.query({ query, format: 'JSONEachRow' });
  return (await rs.json<T>())[0];
}

/** The table's comment, or undefined when there is no such table. */
async function tableComment(ch: ClickHouse, name: string, database: string | undefined): Promise<string | undefined> {
  const db = database ? quoteString(database) : 'currentDatabase()';
  const row = await one<{ comment: string }>(
    ch,
    `SELECT comment FROM system.tables WHERE database = ${db} AND name = ${quoteString(name)}`,
  );
  return row?.comment;
}

async function logRows(ch: ClickHouse, topology: string, sink: string, database: string | undefined): Promise<number> {
  const row = await one<{ n: string | number }>(
    ch,
    `SELECT count() AS n FROM ${qualifiedName(OFFSETS_TABLE, database)} WHERE topology = ${quoteString(topology)} AND sink = ${quoteString(sink)}`,
  );
  return Number(row?.n ?? 0);
}

/**
 * Hands each rebuilt table to its live sink (the steps above); a table already handed over is left as it is.
 * Returns a line per table saying what was done.
 */
export async function swapTables(
  ch: ClickHouse,
  topology: string,
  tables: readonly SwapTable[],
  suffix: string,
): Promise<string[]> {
  const done: string[] = [];
  for (const t of tables) {
    const live = qualifiedName(t.live, t.database);
    const rebuilt = qualifiedName(t.rebuilt, t.database);
    const liveComment = await tableComment(ch, t.live, t.database);
    let what = 'already swapped';
    if (liveComment !== markOf(suffix)) {
      if ((await tableComment(ch, t.rebuilt, t.database)) === undefined) {
        throw new ClickHouseSinkError({
          code: 'CH_SWAP',
          retriable: false,
          message: `swap: table ${shown(t.rebuilt, t.database)} does not exist; nothing to swap in for ${shown(t.live, t.database)}`,
        });
      }
      await ch.client.command({ query: `ALTER TABLE ${rebuilt} MODIFY COMMENT ${quoteString(markOf(suffix))}` });
      await ch.client.command({
        query:
          liveComment === undefined ? `RENAME TABLE ${rebuilt} TO ${live}` : `EXCHANGE TABLES ${live} AND ${rebuilt}`,
      });
      what = 'swapped';
    }
    const from = rebuildLogSink(t.sinkId, suffix);
    if ((await logRows(ch, topology, from, t.database)) > 0) {
      const log = qualifiedName(OFFSETS_TABLE, t.database);
      const where = (sink: string) => `topology = ${quoteString(topology)} AND sink = ${quoteString(sink)}`;
      const settings = { mutations_sync: '2', async_insert: 0, insert_deduplication_token: '' } as const;
      await ch.client.command({ query: `DELETE FROM ${log} WHERE ${where(t.sinkId)}`, clickhouse_settings: settings });
      await ch.client.command({
        query: `INSERT INTO ${log} (topology, sink, topic, partition, first_offset, last_offset)
          SELECT topology, ${quoteString(t.sinkId)}, topic, partition, argMax(first_offset, last_offset), max(last_offset)
          FROM ${log} WHERE ${where(from)} GROUP BY topology, topic, partition`,
        clickhouse_settings: settings,
      });
      await ch.client.command({ query: `DELETE FROM ${log} WHERE ${where(from)}`, clickhouse_settings: settings });
    }
    done.push(`${what} ${t.live} <-> ${t.rebuilt}`);
  }
  return done;
}

/** The suffix of a rebuild already swapped into the live table, if any (its mark). */
export async function swappedIn(ch: ClickHouse, table: string, database?: string): Promise<string | undefined> {
  const comment = await tableComment(ch, table, database);
  return comment?.startsWith(MARK) ? comment.slice(MARK.length) : undefined;
}

/**
 * Refuses a live sink on a table whose hand-over stopped between the exchange and the offsets move: its
 * offsets log would describe the old table, and a replay under it would count ranges twice.
 */
export async function assertSwapFinished(
  ch: ClickHouse,
  topology: string,
  sinkId: string,
  table: string,
  database?: string,
): Promise<void> {
  const suffix = await swappedIn(ch, table, database);
  if (suffix === undefined || (await logRows(ch, topology, rebuildLogSink(sinkId, suffix), database)) === 0) return;
  throw new ClickHouseSinkError({
    code: 'CH_SWAP',
    retriable: false,
    message: `table ${shown(table, database)}: its swap with a rebuild (--into ${suffix}) did not finish; run \`pipelines replay <topology> --into ${suffix} --swap\` again to finish it, then start the worker`,
  });
}
