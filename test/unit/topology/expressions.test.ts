// CEL at the boundary: the numbers policy, avsc records, results out of CEL, checking with hints, safety.
import avro from 'avsc';
import { loadAvsc, recordConstructors } from '../../../pipelines/topology/avro.ts';
import {
  ExpressionChecker,
  ExpressionError,
  ExpressionRuntime,
  fieldPath,
} from '../../../pipelines/topology/expressions.ts';
import type { Scope } from '../../../pipelines/topology/types.ts';
import { placed, TOPOLOGIES } from './helpers.ts';

const schema = loadAvsc(`${TOPOLOGIES}/schemas/OrderPlaced-v2.avsc`);
const runtime = new ExpressionRuntime(recordConstructors(schema.type));
const decoded = schema.type.fromBuffer(schema.type.toBuffer(placed()));
const plainEvent = placed();

describe('numbers policy: event numbers are doubles, int literals mix with them, ints leave as numbers', () => {
  const table: [string, unknown][] = [
    ['event.data.totalAmount * 2', 10],
    ['event.data.totalAmount + 1', 6],
    ['event.data.totalAmount / 2', 2.5],
    ['2 * event.data.totalAmount', 10],
    ['event.data.totalAmount == 5', true],
    ['event.data.totalAmount != 5', false],
    ['event.data.totalAmount > 4', true],
    ['event.data.items[0].quantity == 2', true],
    ['event.data.items[0].quantity * event.data.items[0].price', 5],
    ['event.timestamp >= 60000', true],
    ['1 + 2', 3],
    ['int(event.data.totalAmount)', 5],
    ['size(event.data.items)', 1],
    ['event.data.items.map(i, i.quantity)', [2]],
    ['[1, 2]', [1, 2]],
    ['{"n": 1, "xs": [1, 2]}', { n: 1, xs: [1, 2] }],
    ['event.data.channel == null', true],
    // Optional selection covers an absent field; a present null stays null (CEL semantics).
    ["event.data.?channel.orValue('web')", null],
    ["event.data.channel != null ? event.data.channel : 'web'", 'web'],
    ['has(event.data.channel)', true],
    ["event.eventType == 'OrderPlaced' && event.data.customerId.startsWith('c')", true],
    ['string(event.data.totalAmount)', '5'],
  ];
  it.each(table)('%s on an avsc record → %p', (src, want) => {
    expect(runtime.compile(src).evaluate({ event: decoded })).toEqual(want);
  });
  it.each(table.filter(([s]) => !s.includes('channel')))('%s on a plain object → %p', (src, want) => {
    expect(runtime.compile(src).evaluate({ event: plainEvent })).toEqual(want);
  });
  it('ints come out as JS numbers, never bigint', () => {
    expect(typeof runtime.compile('1 + 2').evaluate({})).toBe('number');
  });
  it('an int beyond 2^53 is an ExpressionError', () => {
    expect(() => runtime.compile('9007199254740993').evaluate({})).toThrow(ExpressionError);
  });
  it('a missing field is an ExpressionError naming the expression', () => {
    expect(() => runtime.compile('event.nope').evaluate({ event: plainEvent })).toThrow(
      /No such key: nope in 'event.nope'/,
    );
  });
  it('compiles each expression once', () => {
    expect(runtime.compile('1 + 1')).toBe(runtime.compile('1 + 1'));
  });
});

describe('nothing in an expression reaches the process, modules or files', () => {
  it.each([
    'process.exit(1)',
    'require("fs")',
    'import("fs")',
    'globalThis.process',
    'this.constructor.constructor("return process")()',
    'event.constructor',
  ])('%s', (src) => {
    let result: unknown;
    try {
      result = runtime.compile(src).evaluate({ event: plainEvent });
    } catch (err) {
      expect((err as Error).name).toMatch(/ExpressionError|ParseError|EvaluationError|TypeError/);
      return;
    }
    expect(typeof result).not.toBe('function');
    expect(result).not.toBe(process);
  });
});

describe('checking against the fields known at a step', () => {
  const checker = new ExpressionChecker();
  const scope: Scope = { event: schema.fieldType, amount: { kind: 'double' } };
  it.each([
    ['event.data.customerid', 'expr-unknown-field', /has no field 'customerid'/, 11, /customerId/],
    ['evnt.data', 'expr-unknown-field', /unknown variable 'evnt'/, 0, /event/],
    ['event.data.items.map(i, i.prise)', 'expr-unknown-field', /'i' has no field 'prise'/, 26, /price/],
    ['amount + "x"', 'expr-type', /no such overload/, 0, undefined],
    ['amount +', 'expr-syntax', /./, 8, undefined],
  ] as const)('%s → %s', (src, code, message, offset, hint) => {
    const r = checker.check(src, scope);
    expect(r.problems[0]?.code).toBe(code);
    expect(r.problems[0]?.message).toMatch(message);
    expect(r.problems[0]?.offset).toBe(offset);
    if (hint) expect(r.problems[0]?.hint).toMatch(hint);
  });
  it.each([
    ['event.data.totalAmount * 2', 'double'],
    ['event.data.orderId', 'string'],
    ['size(event.data.items)', 'double'],
    ['event.data.items', 'list'],
    ["has(event.data.channel) ? 'a' : 'b'", 'string'],
  ])('%s has type %s', (src, kind) => {
    const r = checker.check(src, scope);
    expect(r.problems).toEqual([]);
    expect(r.type?.kind).toBe(kind);
  });
});

describe('Avro evolution: a v1 OrderPlaced read with the v2 reader schema', () => {
  it('fills the new optional field with its default (null)', () => {
    const v1 = loadAvsc(`${TOPOLOGIES}/schemas/OrderPlaced.avsc`).type;
    const resolver = schema.type.createResolver(v1);
    const read = schema.type.fromBuffer(v1.toBuffer(placed()), resolver) as { data: { channel: unknown } };
    expect(read.data.channel).toBeNull();
    expect(runtime.compile("event.data.channel == null ? 'none' : event.data.channel").evaluate({ event: read })).toBe(
      'none',
    );
  });
  it('v2 can read what v1 wrote, and v1 what v2 wrote (backward and forward compatible)', () => {
    const v1 = loadAvsc(`${TOPOLOGIES}/schemas/OrderPlaced.avsc`).type;
    expect(() => schema.type.createResolver(v1)).not.toThrow();
    expect(() => v1.createResolver(schema.type)).not.toThrow();
    expect(avro.Type.isType(v1)).toBe(true);
  });
});

describe('field paths are read directly, with the results and errors of CEL', () => {
  const cel = new ExpressionRuntime(recordConstructors(schema.type));
  const inputs = [
    { event: decoded },
    { event: plainEvent },
    { event: null },
    { event: { data: null } },
    { other: 1 },
    { event: new Map([['data', { orderId: 'm' }]]) },
  ];
  it.each([
    'event',
    'event.data',
    'event.data.orderId',
    'event . data . orderId',
    'event.data.nope',
    'event.eventId',
    'other',
    'nope',
  ])('%s', (src) => {
    expect(fieldPath(src)).toBeDefined();
    for (const vars of inputs) {
      const direct = (() => {
        try {
          return { v: runtime.compile(src).evaluate(vars) };
        } catch (e) {
          return { e: (e as Error).name };
        }
      })();
      // The same path through CEL itself: wrapped in a no-op so that the fast path does not apply.
      const viaCel = (() => {
        try {
          return { v: cel.compile(`true ? ${src} : ${src}`).evaluate(vars) };
        } catch (e) {
          return { e: (e as Error).name };
        }
      })();
      expect(direct).toEqual(viaCel);
    }
  });
  it.each(['true', 'null', 'event.constructor', 'a.__proto__', 'x + 1', 'f(x)'])('%s is not a plain path', (src) => {
    expect(fieldPath(src)).toBeUndefined();
  });
});

describe('matches() runs in linear time (RE2 semantics), and the checker refuses what cannot', () => {
  const checker = new ExpressionChecker();
  const scope: Scope = { s: { kind: 'string' } };

  it('a pattern that backtracks exponentially in JavaScript ends at once', () => {
    // With a backtracking engine this input takes about 2^31 steps (minutes); linear it is microseconds.
    const expr = runtime.compile(`s.matches('^(a+)+$')`);
    const started = performance.now();
    expect(expr.evaluate({ s: `${'a'.repeat(31)}!` })).toBe(false);
    expect(expr.evaluate({ s: 'a'.repeat(31) })).toBe(true);
    expect(runtime.compile(`s.matches('^(a|aa)+$')`).evaluate({ s: `${'a'.repeat(5000)}!` })).toBe(false);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it.each([
    [`s.matches('^(a+)+$')`, undefined],
    [`s.matches('[A-Z]{2}-\\\\d+')`, undefined],
    [`s.matches('(?=a)b')`, /cannot run in linear time/],
    [`s.matches('(a)\\\\1')`, /cannot run in linear time/],
    [`s.matches('a{1001}')`, /cannot run in linear time/],
    [`s.matches('(')`, /invalid regular expression '\('/],
    [`s.matches(s)`, /takes its pattern as a string literal/],
    [`s.matches(s + 'x')`, /takes its pattern as a string literal/],
    [`[s].exists(x, x.matches('a(?!b)'))`, /cannot run in linear time/],
  ])('%s', (src, problem) => {
    const r = checker.check(src, scope);
    if (!problem) expect(r.problems).toEqual([]);
    else {
      expect(r.problems).toHaveLength(1);
      expect(r.problems[0]!.code).toBe('expr-regex');
      expect(r.problems[0]!.message).toMatch(problem);
    }
  });
});
