// Typed errors of the ClickHouse sink: every failure says whether a retry can help (`retriable`),
// keeps the original error as `cause`, and names the table and column when ClickHouse told us which.

/** Stable codes of the sink's errors; the retry helper reads `retriable`, never the code. */
import { PipelinesError } from '../../errors.ts';

export type ClickHouseSinkErrorCode =
  | 'CH_UNAVAILABLE' // connection refused/reset, DNS, server restarting
  | 'CH_TIMEOUT' // request or query timed out: the insert may or may not have landed
  | 'CH_OVERLOADED' // too many parts, memory limit, too many queries: back off
  | 'CH_UNKNOWN_TABLE'
  | 'CH_UNKNOWN_COLUMN'
  | 'CH_TYPE_MISMATCH' // a value could not be parsed as the column's type
  | 'CH_AUTH' // wrong user or password
  | 'CH_SCHEMA_CHANGE_REFUSED' // a destructive DDL change without the flag that allows it
  | 'CH_REPLAY_BOUNDARY' // a write crossed the boundary of a batch that must be replayed exactly
  | 'CH_EMBEDDED_PATH' // this process's engine has another data directory, or another process has this one
  | 'CH_SWAP' // a rebuild's swap is missing its table, or was cut short (swap.ts)
  | 'CH_DEDUP_UNTESTED_ENGINE' // dedup logs need the crash repair, on an engine it was not tested on (dedup-log.ts)
  | 'CH_SERVER_TOO_OLD' // a server older than the sink supports (version.ts)
  | 'CH_FENCED' // another worker claimed a partition this one was writing (offsets.ts)
  | 'CH_SERVER'; // any other error from ClickHouse

export interface ClickHouseSinkErrorDetails {
  code: ClickHouseSinkErrorCode;
  retriable: boolean;
  message: string;
  table?: string;
  column?: string;
  /** 1-based row of the batch ClickHouse complained about, when it said. */
  row?: number;
  /** ClickHouse's numeric error code and its name (e.g. 16, NO_SUCH_COLUMN_IN_TABLE). */
  clickhouseCode?: number;
  clickhouseType?: string;
  cause?: unknown;
}

/** Its message names the table, the column and what ClickHouse said: the CLI shows it without a stack. */
export class ClickHouseSinkError extends PipelinesError {
  override readonly name = 'ClickHouseSinkError';
  declare readonly code: ClickHouseSinkErrorCode;
  readonly table: string | undefined;
  readonly column: string | undefined;
  readonly row: number | undefined;
  readonly clickhouseCode: number | undefined;
  readonly clickhouseType: string | undefined;

  constructor(d: ClickHouseSinkErrorDetails) {
    super(d.code, d.message, { retriable: d.retriable, cause: d.cause });
    this.table = d.table;
    this.column = d.column;
    this.row = d.row;
    this.clickhouseCode = d.clickhouseCode;
    this.clickhouseType = d.clickhouseType;
  }
}

// ClickHouse error codes (src/Common/ErrorCodes.cpp) grouped by what the sink does about them.
const UNKNOWN_COLUMN = new Set([8, 16, 47]); // THERE_IS_NO_COLUMN, NO_SUCH_COLUMN_IN_TABLE, UNKNOWN_IDENTIFIER
const UNKNOWN_TABLE = new Set([60, 81]); // UNKNOWN_TABLE, UNKNOWN_DATABASE
// CANNOT_PARSE_* family, TYPE_MISMATCH, INCORRECT_DATA, CANNOT_READ_ARRAY_FROM_TEXT, ...
const TYPE_MISMATCH = new Set([6, 25, 26, 27, 32, 38, 41, 53, 69, 70, 72, 117, 130, 131, 321, 349]);
const AUTH = new Set([192, 193, 194, 195, 497, 516]);
const OVERLOADED = new Set([202, 203, 241, 252, 242, 236, 373, 439]);
const TIMEOUT = new Set([159, 209]); // TIMEOUT_EXCEEDED, SOCKET_TIMEOUT
const UNAVAILABLE = new Set([3, 210, 279, 394, 999]); // UNEXPECTED_END_OF_FILE, NETWORK_ERROR, ALL_CONNECTION_TRIES_FAILED, QUERY_WAS_CANCELLED, KEEPER_EXCEPTION

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
]);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/** What we know about the operation that failed, to name it in the message. */
export interface ErrorContext {
  table?: string;
  operation?: string;
}

interface ParsedServerError {
  code: number;
  type: string | undefined;
  text: string;
}

// New servers: "Code: 16. DB::Exception: No such column zz in table default.e1. (NO_SUCH_COLUMN_IN_TABLE)".
// Old servers (18.x): "Code: 16, e.displayText() = DB::Exception: No such column zz in table e1, e.what() = ...".
// @clickhouse/client parses the first form into ClickHouseError {code, type}; the second stays a plain Error.
function parseServerError(err: unknown): ParsedServerError | undefined {
  if (!(err instanceof Error)) return undefined;
  const withCode = err as Error & { code?: unknown; type?: unknown };
  if (typeof withCode.code === 'string' && /^\d+$/.test(withCode.code) && typeof withCode.type === 'string') {
    return { code: Number(withCode.code), type: withCode.type, text: err.message };
  }
  const m =
    /Code: (\d+)[.,]\s*(?:e\.displayText\(\) = )?(?:DB::Exception: )?(.*?)(?:, e\.what\(\) = DB::Exception)?\s*$/s.exec(
      err.message,
    );
  if (!m) return undefined;
  const typeMatch = /\(([A-Z][A-Z0-9_]{2,})\)\s*(?:\(version [^)]*\))?\s*$/.exec(m[2]!);
  return { code: Number(m[1]), type: typeMatch?.[1], text: m[2]!.trim() };
}

/** Which column and row ClickHouse's message names, in the phrasings of old and new servers. */
export function columnFromMessage(text: string): { column?: string; row?: number } {
  const patterns = [
    /No such column [`"]?([^\s`"]+?)[`"]? in table/,
    /while read(?:ing)? the value of key [`"]?([^\s`"):]+)/,
    /Unknown field found while parsing \w+ format: ([^\s:]+)/,
    /There is no column [`"]?([^\s`"]+?)[`"]? in table/,
    /Missing columns: '([^']+)'/,
    /Unknown (?:expression )?identifier [`'"]?([^\s`'"]+)[`'"]?/,
    /[Cc]olumn [`"]?([^\s`",]+?)[`"]?(?: of type| with type|, type|:)/,
  ];
  let column: string | undefined;
  for (const p of patterns) {
    const m = p.exec(text);
    if (m) {
      column = m[1];
      break;
    }
  }
  const rowMatch = /\(at row (\d+)\)/.exec(text);
  const out: { column?: string; row?: number } = {};
  if (column !== undefined) out.column = column;
  if (rowMatch) out.row = Number(rowMatch[1]);
  return out;
}

function firstLine(text: string): string {
  const line = text.split('\n')[0]!.trim();
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

function errno(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && !/^\d+$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Turns whatever the client threw into a ClickHouseSinkError. Network failures, timeouts and
 * overload are retriable; schema problems (unknown table or column, unparsable value) are not.
 */
export function classifyError(err: unknown, ctx: ErrorContext = {}): ClickHouseSinkError {
  if (err instanceof ClickHouseSinkError) return err;
  const where = ctx.table ? ` into table "${ctx.table}"` : '';
  const op = ctx.operation ?? 'request';
  const server = parseServerError(err);
  if (server) {
    const { column, row } = columnFromMessage(server.text);
    const base = {
      cause: err,
      clickhouseCode: server.code,
      ...(server.type ? { clickhouseType: server.type } : {}),
      ...(ctx.table ? { table: ctx.table } : {}),
      ...(column !== undefined ? { column } : {}),
      ...(row !== undefined ? { row } : {}),
    };
    const tag = `(${server.type ?? 'ClickHouse'} ${server.code})`;
    const detail = firstLine(server.text);
    if (UNKNOWN_COLUMN.has(server.code) || (server.code === 117 && /Unknown field/.test(server.text))) {
      const col = column ? `column "${column}" does not exist` : 'unknown column';
      return new ClickHouseSinkError({
        ...base,
        code: 'CH_UNKNOWN_COLUMN',
        retriable: false,
        message: `ClickHouse ${op}${where}: ${col} in ${ctx.table ? `table "${ctx.table}"` : 'a table'} ${tag}: ${detail}`,
      });
    }
    if (UNKNOWN_TABLE.has(server.code)) {
      return new ClickHouseSinkError({
        ...base,
        code: 'CH_UNKNOWN_TABLE',
        retriable: false,
        message: `ClickHouse ${op}${where}: ${ctx.table ? `table "${ctx.table}"` : 'a table'} does not exist ${tag}: ${detail}`,
      });
    }
    if (TYPE_MISMATCH.has(server.code) || /^CANNOT_PARSE/.test(server.type ?? '')) {
      const col = column ? ` column "${column}"` : '';
      const at = row !== undefined ? ` (row ${row} of the batch)` : '';
      return new ClickHouseSinkError({
        ...base,
        code: 'CH_TYPE_MISMATCH',
        retriable: false,
        message: `ClickHouse ${op}${where}: a value of${col || ' a column'} in ${ctx.table ? `table "${ctx.table}"` : 'a table'} does not match its type${at} ${tag}: ${detail}`,
      });
    }
    if (AUTH.has(server.code)) {
      return new ClickHouseSinkError({
        ...base,
        code: 'CH_AUTH',
        retriable: false,
        message: `ClickHouse ${op}${where}: authentication failed ${tag}`,
      });
    }
    if (TIMEOUT.has(server.code)) {
      return new ClickHouseSinkError({
        ...base,
        code: 'CH_TIMEOUT',
        retriable: true,
        message: `ClickHouse ${op}${where} timed out ${tag}: ${detail}`,
      });
    }
    if (OVERLOADED.has(server.code) || UNAVAILABLE.has(server.code)) {
      return new ClickHouseSinkError({
        ...base,
        code: OVERLOADED.has(server.code) ? 'CH_OVERLOADED' : 'CH_UNAVAILABLE',
        retriable: true,
        message: `ClickHouse ${op}${where} failed, will retry ${tag}: ${detail}`,
      });
    }
    return new ClickHouseSinkError({
      ...base,
      code: 'CH_SERVER',
      retriable: false,
      message: `ClickHouse ${op}${where} failed ${tag}: ${detail}`,
    });
  }

  const message = err instanceof Error ? err.message : String(err);
  const sysCode = errno(err);
  const base = { cause: err, ...(ctx.table ? { table: ctx.table } : {}) };
  if ((sysCode && TIMEOUT_CODES.has(sysCode)) || /timeout/i.test(message)) {
    return new ClickHouseSinkError({
      ...base,
      code: 'CH_TIMEOUT',
      retriable: true,
      message: `ClickHouse ${op}${where} timed out: ${firstLine(message)}`,
    });
  }
  if (
    (sysCode && NETWORK_CODES.has(sysCode)) ||
    /socket hang up|ECONNREFUSED|ECONNRESET|other side closed|connect E/i.test(message)
  ) {
    return new ClickHouseSinkError({
      ...base,
      code: 'CH_UNAVAILABLE',
      retriable: true,
      message: `ClickHouse unavailable during ${op}${where}: ${firstLine(message) || sysCode}`,
    });
  }
  // HTTP errors without a ClickHouse body (a proxy's 502/503/504) are transient.
  if (/\b(502|503|504)\b/.test(message) || /Bad Gateway|Service Unavailable|Gateway Time-?out/i.test(message)) {
    return new ClickHouseSinkError({
      ...base,
      code: 'CH_UNAVAILABLE',
      retriable: true,
      message: `ClickHouse unavailable during ${op}${where}: ${firstLine(message)}`,
    });
  }
  if (/^Authentication failed|status 401|status 403/i.test(message)) {
    return new ClickHouseSinkError({
      ...base,
      code: 'CH_AUTH',
      retriable: false,
      message: `ClickHouse ${op}${where}: authentication failed`,
    });
  }
  return new ClickHouseSinkError({
    ...base,
    code: 'CH_SERVER',
    retriable: false,
    message: `ClickHouse ${op}${where} failed: ${firstLine(message)}`,
  });
}
