// Types through to the ClickHouse columns: what a table gets without `columns` (counts UInt64, Avro longs Int64,
// times DateTime64, lists Array), declared columns that cannot hold what flows into them (errors, located), lossy
// ones (warnings), and engines that merge rows the wrong way for what they mean (lints with the fix).
import { checkFile } from '../../../pipelines/compile/compile.ts';
import { tableSpecFor } from '../../../pipelines/sinks/clickhouse/table.ts';
import { formatDiagnostic } from '../../../pipelines/topology/diagnostics.ts';
import { ExpressionChecker } from '../../../pipelines/topology/expressions.ts';
import { EPOCH_MS, INTEGER, type Scope } from '../../../pipelines/topology/types.ts';
import { topology, writeTopology } from './helpers.ts';

function check(steps: string, sinks: string) {
  const r = checkFile(writeTopology(topology({ steps, sinks })), { env: {} });
  // The helper's topology declares no topics and a table these steps do not read.
  const shown = r.diagnostics
    .filter((d) => d.code !== 'lint-topic-undeclared' && d.code !== 'lint-unused-table')
    .map(formatDiagnostic);
  return { r, shown };
}

/** The column types the sink would create, by column. */
function columns(steps: string, sink: string): Record<string, string> {
  const { r, shown } = check(steps, `    - clickhouse: ${sink}`);
  expect(shown.filter((d) => !/warning:|info:/.test(d))).toEqual([]);
  const s = r.checked!.sinks[0]!;
  const spec = tableSpecFor(s.config as never, s.scope);
  return Object.fromEntries(spec.columns.map((c) => [c.name, c.type]));
}

const perProduct = `    - id: lines
      explode:
        list: event.data.items
        fields: { orderId: event.data.orderId, at: event.timestamp, productId: item.productId, qty: item.quantity, price: item.price }
    - id: per-product
      aggregate:
        window: { tumbling: 1m, on: at }
        groupBy: [productId]
        emit: perBatch
        measures: { qty: sum(qty), revenue: sum(price), lines: count(), orders: distinct(orderId), top: max(price) }`;

test('without columns, an aggregate gets counts as UInt64, integer sums as Int64, window bounds as DateTime64', () => {
  expect(
    columns(perProduct, '{ table: t, engine: { type: SummingMergeTree, orderBy: [windowStart, productId] } }'),
  ).toEqual({
    productId: 'String',
    windowStart: "DateTime64(3, 'UTC')",
    windowEnd: "DateTime64(3, 'UTC')",
    qty: 'Int64',
    revenue: 'Float64',
    lines: 'UInt64',
    orders: 'Array(String)',
    top: 'Float64',
  });
});

test('without columns, a fold types its state from the handlers: a version counter, a time, a size', () => {
  const fold = `    - id: status
      fold:
        key: event.data.orderId
        initial: { orderId: "''", status: "'NEW'", version: "0", placedAt: "0", lines: "0" }
        on:
          OrderPlaced: { orderId: event.data.orderId, status: "'PLACED'", version: state.version + 1, placedAt: event.timestamp, lines: size(event.data.items), channel: event.data.channel }
          OrderShipped: { status: "'SHIPPED'", version: state.version + 1 }`;
  expect(
    columns(fold, '{ table: t, engine: { type: ReplacingMergeTree, orderBy: [orderId], version: version } }'),
  ).toEqual({
    orderId: 'String',
    status: 'String',
    version: 'Int64',
    placedAt: "DateTime64(3, 'UTC')",
    lines: 'UInt64',
    // Set by one handler only, and optional in the schema: null until then.
    channel: 'Nullable(String)',
  });
});

test('a declared column that cannot hold what flows into it is an error at the column, with the fix', () => {
  const { shown } = check(
    perProduct,
    '    - clickhouse: { table: t, columns: { productId: Float64, orders: UInt64, lines: UInt64 }, engine: { type: SummingMergeTree } }',
  );
  // Line 23 holds the sink (the topology helper's steps start at line 12); the columns point at the types.
  expect(shown.filter((d) => d.includes('[sink-column-type]'))).toEqual([
    expect.stringMatching(
      /:23:53: column 'productId': a string cannot go into Float64 \(convert it in a map step \(double\(x\)\), or declare it String\)/,
    ),
    expect.stringMatching(
      /:23:70: column 'orders': a list<string> cannot go into UInt64 \(declare it Array\(String\); for a count of distinct values, emit: onClose\)/,
    ),
  ]);
});

test('declared columns that fit pass: wrappers, dates for times, Decimal for sums, JSON text for lists', () => {
  const { shown } = check(
    perProduct,
    "    - clickhouse: { table: t, columns: { windowStart: DateTime('UTC'), productId: LowCardinality(String), revenue: 'Decimal(18, 2)', lines: 'SimpleAggregateFunction(sum, UInt64)', orders: String, qty: 'Nullable(Int32)' }, engine: { type: SummingMergeTree } }",
  );
  expect(shown).toEqual([]);
});

test('a fractional number into an integer column is a warning, not an error', () => {
  const { r, shown } = check(
    perProduct,
    '    - clickhouse: { table: t, columns: { top: UInt32 }, engine: { type: SummingMergeTree } }',
  );
  expect(shown).toEqual([
    expect.stringMatching(/warning: column 'top': a number with a fraction goes into UInt32: the fraction is dropped/),
  ]);
  expect(r.diagnostics.some((d) => d.severity === 'error')).toBe(false);
});

test.each([
  [
    'partial rows into a ReplacingMergeTree',
    perProduct,
    'ReplacingMergeTree',
    /partial rows .* all but one per key are lost/,
  ],
  [
    'partial rows through a map into a ReplacingMergeTree',
    `${perProduct}\n    - map: { productId: productId, qty: qty }`,
    'ReplacingMergeTree',
    /partial rows/,
  ],
  [
    'fold updates into a SummingMergeTree',
    '    - fold: { key: event.data.orderId, initial: { n: "0" }, on: { OrderPlaced: { n: state.n + 1 } } }',
    'SummingMergeTree',
    /current value of its key .* SummingMergeTree adds them up/,
  ],
])('lint: %s', (_, steps, engine, message) => {
  const { shown } = check(steps, `    - clickhouse: { table: t, engine: { type: ${engine} } }`);
  expect(shown.filter((d) => d.includes('[lint-rows-engine]'))).toEqual([expect.stringMatching(message)]);
});

test('no rows lint where the engine fits: partials summed, updates replaced, final windows anywhere', () => {
  const onClose = perProduct.replace('emit: perBatch', 'emit: onClose').replace(', orders: distinct(orderId)', '');
  for (const [steps, engine] of [
    [perProduct, 'SummingMergeTree'],
    [onClose, 'ReplacingMergeTree'],
    [
      '    - fold: { key: event.data.orderId, initial: { n: "0" }, on: { OrderPlaced: { n: state.n + 1 } } }',
      'ReplacingMergeTree',
    ],
  ] as const) {
    const { shown } = check(steps, `    - clickhouse: { table: t, engine: { type: ${engine} } }`);
    expect(shown.filter((d) => d.includes('[lint-rows-engine]'))).toEqual([]);
  }
});

describe('what a number holds, from the syntax', () => {
  const scope: Scope = {
    at: EPOCH_MS,
    n: INTEGER,
    price: { kind: 'double' },
    xs: { kind: 'list', items: { kind: 'string' } },
    flag: { kind: 'bool' },
  };
  const checker = new ExpressionChecker();
  test.each([
    ['at + 60000', 'epochMs'],
    ['at - at', 'integer'],
    ['n * 2', 'integer'],
    ['-n', 'integer'],
    ['size(xs)', 'count'],
    ['flag ? 1 : 2', 'integer'],
    ['n * price', undefined],
    ['price + 1', undefined],
    ['at + 0.5', undefined],
  ])('%s → %s', (source, sort) => {
    const r = checker.check(source, scope);
    expect(r.problems).toEqual([]);
    expect(r.type).toEqual(sort ? { kind: 'double', number: sort } : { kind: 'double' });
  });
});
