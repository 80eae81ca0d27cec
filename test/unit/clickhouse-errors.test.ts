// classifyError: ClickHouse messages of old (18.x) and new (26.x) servers and network failures
// become typed errors with `retriable` and the table and column they name.

import { ClickHouseError } from '@clickhouse/client';
import { ClickHouseSinkError, classifyError, columnFromMessage } from '../../pipelines/sinks/clickhouse/errors.ts';

const chError = (code: string, type: string, message: string) => new ClickHouseError({ code, type, message });
const sysError = (code: string, message = code) => Object.assign(new Error(message), { code });

test.each([
  // [what, error, code, retriable, column, row]
  [
    'new: no such column',
    chError('16', 'NO_SUCH_COLUMN_IN_TABLE', 'No such column zz in table default.e1 (480ed82d). '),
    'CH_UNKNOWN_COLUMN',
    false,
    'zz',
    undefined,
  ],
  [
    'new: unknown field in JSONEachRow',
    chError(
      '117',
      'INCORRECT_DATA',
      'Unknown field found while parsing JSONEachRow format: zz: (at row 1)\n: While executing',
    ),
    'CH_UNKNOWN_COLUMN',
    false,
    'zz',
    1,
  ],
  [
    'new: type mismatch',
    chError(
      '38',
      'CANNOT_PARSE_DATE',
      'Cannot parse date here: notadate"}: (while reading the value of key d): (at row 3)\n: While',
    ),
    'CH_TYPE_MISMATCH',
    false,
    'd',
    3,
  ],
  [
    'new: unknown table',
    chError('60', 'UNKNOWN_TABLE', 'Table default.nope does not exist. Maybe you meant system.one?.'),
    'CH_UNKNOWN_TABLE',
    false,
    undefined,
    undefined,
  ],
  [
    'old: no such column',
    new Error('Code: 16, e.displayText() = DB::Exception: No such column zz in table e1, e.what() = DB::Exception\n'),
    'CH_UNKNOWN_COLUMN',
    false,
    'zz',
    undefined,
  ],
  [
    'old: unsigned with a minus',
    new Error(
      "Code: 72, e.displayText() = DB::Exception: Unsigned type must not contain '-' symbol: (while read the value of key k): (at row 1)\n, e.what() = DB::Exception\n",
    ),
    'CH_TYPE_MISMATCH',
    false,
    'k',
    1,
  ],
  [
    'too many parts',
    chError('252', 'TOO_MANY_PARTS', 'Too many parts (300).'),
    'CH_OVERLOADED',
    true,
    undefined,
    undefined,
  ],
  [
    'memory limit',
    chError('241', 'MEMORY_LIMIT_EXCEEDED', 'Memory limit exceeded'),
    'CH_OVERLOADED',
    true,
    undefined,
    undefined,
  ],
  [
    'query timeout',
    chError('159', 'TIMEOUT_EXCEEDED', 'Timeout exceeded: elapsed 30 s'),
    'CH_TIMEOUT',
    true,
    undefined,
    undefined,
  ],
  [
    'auth',
    chError('516', 'AUTHENTICATION_FAILED', 'default: Authentication failed'),
    'CH_AUTH',
    false,
    undefined,
    undefined,
  ],
  [
    'syntax error',
    chError('62', 'SYNTAX_ERROR', 'Syntax error: failed at position 1'),
    'CH_SERVER',
    false,
    undefined,
    undefined,
  ],
  [
    'connection refused',
    sysError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:18123'),
    'CH_UNAVAILABLE',
    true,
    undefined,
    undefined,
  ],
  ['connection reset', sysError('ECONNRESET', 'socket hang up'), 'CH_UNAVAILABLE', true, undefined, undefined],
  ['client timeout', new Error('Timeout error.'), 'CH_TIMEOUT', true, undefined, undefined],
  ['socket timeout', sysError('ETIMEDOUT'), 'CH_TIMEOUT', true, undefined, undefined],
  ['proxy 503', new Error('Service Unavailable'), 'CH_UNAVAILABLE', true, undefined, undefined],
  [
    'refused wrapped in cause',
    new Error('request failed', { cause: sysError('ECONNREFUSED') }),
    'CH_UNAVAILABLE',
    true,
    undefined,
    undefined,
  ],
])('%s', (_what, raw, code, retriable, column, row) => {
  const e = classifyError(raw, { table: 'orders', operation: 'insert' });
  expect(e).toBeInstanceOf(ClickHouseSinkError);
  expect(e.code).toBe(code);
  expect(e.retriable).toBe(retriable);
  expect(e.column).toBe(column);
  expect(e.row).toBe(row);
  expect(e.table).toBe('orders');
  expect(e.cause).toBe(raw);
  expect(e.message).toContain('"orders"');
  if (column) expect(e.message).toContain(`"${column}"`);
});

test('a ClickHouseSinkError passes through unchanged', () => {
  const e = new ClickHouseSinkError({ code: 'CH_TIMEOUT', retriable: true, message: 'x' });
  expect(classifyError(e)).toBe(e);
});

test('the numeric ClickHouse code and its name are kept', () => {
  const e = classifyError(chError('16', 'NO_SUCH_COLUMN_IN_TABLE', 'No such column zz in table t'));
  expect([e.clickhouseCode, e.clickhouseType]).toEqual([16, 'NO_SUCH_COLUMN_IN_TABLE']);
});

test.each([
  ['No such column `amount` in table orders', 'amount'],
  ["Missing columns: 'price' while processing query", 'price'],
  ['nothing useful here', undefined],
])('columnFromMessage(%j)', (text, column) => {
  expect(columnFromMessage(text).column).toBe(column);
});
