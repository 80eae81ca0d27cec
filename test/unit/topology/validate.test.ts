// The validator: every kind of problem, located at file:line:col, with its hint; all problems in one run.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests write ${VAR} interpolation on purpose
import { checkFile } from '../../../pipelines/compile/compile.ts';
import { loadTopology } from '../../../pipelines/runtime/load.ts';
import { catalogue, formatDiagnostic } from '../../../pipelines/topology/diagnostics.ts';
import { topology, writeTopology } from './helpers.ts';

// Line numbers in `topology()`: steps start at line 12, sinks after them.
const cases: {
  name: string;
  yaml: string;
  code: string;
  line?: number;
  col?: number;
  message: RegExp;
  hint?: RegExp;
}[] = [
  {
    name: 'unknown step kind, with the nearest names',
    yaml: topology({ steps: '    - filtr: "true"' }),
    code: 'step-unknown-kind',
    line: 12,
    col: 7,
    message: /unknown step kind 'filtr'/,
    hint: /did you mean 'filter'/,
  },
  {
    name: 'a field the Avro schema of the source does not have',
    yaml: topology({ steps: '    - filter: event.data.customerid == "c1"' }),
    code: 'expr-unknown-field',
    line: 12,
    col: 26,
    message: /'event.data' has no field 'customerid'/,
    hint: /did you mean 'customerId'/,
  },
  {
    name: 'a comma inside a flow map ends the expression: said, with the quoting that fixes it',
    yaml: topology({
      steps:
        '    - aggregate: { window: { tumbling: 1d, on: event.timestamp }, measures: { p95: quantile(event.data.totalAmount, 0.95) } }',
    }),
    code: 'yaml-syntax',
    line: 12,
    col: 84,
    message: /a comma inside \{ \} ended the expression 'quantile\(event.data.totalAmount'/,
    hint: /quote it: p95: "quantile\(event.data.totalAmount, 0.95\)"/,
  },
  {
    name: 'a duplicate key is named',
    yaml: topology({ steps: '    - map: { d: event.data.totalAmount, d: event.timestamp }' }),
    code: 'yaml-syntax',
    line: 12,
    message: /duplicate key 'd'/,
  },
  {
    name: 'a table name with a hyphen: what a name may hold, and an example',
    yaml: topology({ sinks: '    - clickhouse: { table: order-lifecycle }' }),
    code: 'schema-invalid-value',
    message: /expected a table name: letters, digits and _ .*a - is not allowed \(e.g. order_lifecycle\)/,
  },
  {
    name: 'an enrich default for a field the table does not have',
    yaml: topology({
      steps:
        '    - enrich: { table: customers, key: event.data.customerId, as: c, defaults: { segmnt: "\'consumer\'" } }',
    }),
    code: 'expr-unknown-field',
    line: 12,
    message: /table 'customers' has no field 'segmnt'/,
    hint: /did you mean 'segment'/,
  },
  {
    name: 'a table not declared',
    yaml: topology({ steps: '    - enrich: { table: customer, key: event.data.customerId }' }),
    code: 'ref-unknown-table',
    line: 12,
    message: /table 'customer' is not declared/,
    hint: /did you mean 'customers'/,
  },
  {
    name: 'a sink column that no step produces',
    yaml: topology({
      steps: '    - map: { orderId: event.data.orderId, amount: event.data.totalAmount }',
      sinks: '    - clickhouse: { table: t, columns: [orderId, amout] }',
    }),
    code: 'sink-unknown-column',
    line: 14,
    message: /column 'amout' is not produced by any step/,
    hint: /did you mean 'amount'/,
  },
  {
    name: 'a schema file not found',
    yaml: topology().replace('schemas/OrderShipped.avsc', 'schemas/OrderShiped.avsc'),
    code: 'ref-schema-not-found',
    line: 8,
    message: /file 'schemas\/OrderShiped.avsc' not found/,
    hint: /did you mean 'OrderShipped.avsc'/,
  },
  {
    name: 'an unknown key, with the known ones',
    yaml: topology({ steps: '    - enrich: { table: customers, key: event.data.customerId, onMising: keep }' }),
    code: 'schema-unknown-key',
    line: 12,
    message: /unknown key 'onMising'/,
    hint: /did you mean 'onMissing'/,
  },
  {
    name: 'a value of the wrong type',
    yaml: topology({ extra: '  topics: { orders.events: { partitions: three } }\n' }),
    code: 'schema-invalid-type',
    line: 16,
    message: /expected number, got string 'three'/,
  },
  {
    name: 'an enum value, with the nearest',
    yaml: topology({ steps: '    - enrich: { table: customers, key: event.data.customerId, onMissing: kep }' }),
    code: 'schema-invalid-value',
    line: 12,
    message: /'kep' is not allowed/,
    hint: /'keep'/,
  },
  {
    name: 'a missing required key',
    yaml: topology().replace('    group: t\n', ''),
    code: 'schema-missing-key',
    message: /missing required key 'group'/,
  },
  {
    name: 'an expression that does not type-check',
    yaml: topology({ steps: "    - filter: event.data.totalAmount + 'x' == 'y'" }),
    code: 'expr-type',
    line: 12,
    message: /no such overload: double \+ string/,
  },
  {
    name: 'an explode over a value that is not a list',
    yaml: topology({ steps: '    - explode: { list: event.data.totalAmount, fields: { x: item } }' }),
    code: 'expr-type',
    line: 12,
    message: /`list` must give a list; it gives double/,
  },
  {
    name: 'an explode field reading an unknown field of the element',
    yaml: topology({
      steps:
        "    - filter: event.eventType == 'OrderPlaced'\n" +
        '    - explode: { list: event.data.items, fields: { p: item.productID } }',
    }),
    code: 'expr-unknown-field',
    line: 13,
    message: /productID/,
  },
  {
    name: 'a filter that is not a bool',
    yaml: topology({ steps: '    - filter: event.data.orderId' }),
    code: 'expr-not-bool',
    line: 12,
    message: /expected a bool condition, got string/,
  },
  {
    name: 'a pattern that cannot run in linear time',
    yaml: topology({ steps: `    - filter: "event.data.orderId.matches('(a+)(?=b)')"` }),
    code: 'expr-regex',
    line: 12,
    col: 43,
    message: /cannot run in linear time/,
    hint: /no lookaheads/,
  },
  {
    name: 'CEL syntax error',
    yaml: topology({ steps: '    - filter: "event.data.orderId == "' }),
    code: 'expr-syntax',
    line: 12,
    message: /./,
  },
  {
    name: 'an unknown variable after a map',
    yaml: topology({
      steps: '    - map: { amount: event.data.totalAmount }\n    - filter: event.data.totalAmount > 1',
    }),
    code: 'expr-unknown-field',
    line: 13,
    col: 15,
    message: /unknown variable 'event'/,
    hint: /amount/,
  },
  {
    name: 'a fold handler for an unknown event type',
    yaml: topology({ steps: '    - fold: { key: event.data.orderId, on: { OrderShiped: { status: "\'S\'" } } }' }),
    code: 'ref-unknown-event-type',
    line: 12,
    message: /no event type 'OrderShiped'/,
    hint: /did you mean 'OrderShipped'/,
  },
  {
    name: 'fold handlers see their own event type',
    yaml: topology({
      steps: '    - fold: { key: event.data.orderId, on: { OrderShipped: { total: event.data.totalAmount } } }',
    }),
    code: 'expr-unknown-field',
    line: 12,
    message: /'event.data' has no field 'totalAmount'/,
  },
  {
    name: 'a module path outside the topology folder',
    yaml: topology({ steps: '    - module: { path: ../../etc/evil.ts }' }),
    code: 'ref-path-outside',
    line: 12,
    message: /outside the folder/,
  },
  {
    name: 'a module file not found',
    yaml: topology({ steps: '    - module: { path: ./modules/explode-item.ts }' }),
    code: 'ref-module-not-found',
    line: 12,
    message: /not found/,
    hint: /explode-items.ts/,
  },
  {
    name: 'a sink reading from an unknown step',
    yaml: topology({
      steps: '    - id: keep-all\n      filter: "true"',
      sinks: '    - clickhouse: { table: t, from: keep-al }',
    }),
    code: 'ref-unknown-step',
    message: /no step with id 'keep-al'/,
    hint: /did you mean 'keep-all'/,
  },
  {
    name: 'two steps with one id',
    yaml: topology({ steps: '    - id: a\n      filter: "true"\n    - id: a\n      filter: "false"' }),
    code: 'step-duplicate-id',
    message: /step id 'a' is used twice/,
  },
  {
    name: 'session windows cannot emit per batch',
    yaml: topology({
      steps: '    - id: s\n      aggregate: { window: { session: 5m }, measures: { n: count() }, emit: perBatch }',
    }),
    code: 'window-invalid',
    message: /session windows/,
  },
  {
    name: 'a measure that is not fn(expression)',
    yaml: topology({ steps: '    - id: s\n      aggregate: { window: { tumbling: 1m }, measures: { n: median(x) } }' }),
    code: 'schema-invalid-value',
    message: /fn\(expression\)/,
  },
  {
    name: 'a hopping window without every',
    yaml: topology({ steps: '    - id: s\n      aggregate: { window: { hopping: 5m }, measures: { n: count() } }' }),
    code: 'schema-invalid-value',
    message: /needs `every`/,
  },
  {
    name: 'an environment variable that is not set',
    yaml: topology().replace('topic: orders.events', 'topic: ${NOPE_NOT_SET}'),
    code: 'env-unset',
    line: 6,
    message: /environment variable 'NOPE_NOT_SET' is not set/,
  },
  {
    name: 'YAML syntax',
    yaml: 'apiVersion: pipelines/v1\nkind: [Topology\n',
    code: 'yaml-syntax',
    message: /./,
  },
  {
    name: 'a duration that is not one',
    yaml: topology({ steps: '    - id: d\n      dedupe: { key: event.eventId, horizon: 1 hour }' }),
    code: 'schema-invalid-value',
    message: /expected a duration/,
  },
];

describe('validate', () => {
  it.each(cases)('$name → $code', ({ yaml, code, line, col, message, hint }) => {
    const file = writeTopology(yaml);
    const { diagnostics } = checkFile(file, { env: {} });
    const d = diagnostics.find((x) => x.code === code);
    if (!d) throw new Error(`no ${code} in:\n${diagnostics.map(formatDiagnostic).join('\n')}`);
    expect(d.message).toMatch(message);
    if (line !== undefined) expect(d.line).toBe(line);
    if (col !== undefined) expect(d.column).toBe(col);
    if (hint) expect(d.hint).toMatch(hint);
    expect(d.severity).toBe(catalogue[d.code].severity);
    expect(formatDiagnostic(d)).toMatch(/^[^:]+x\.yaml:\d+:\d+: /);
  });

  it('collects every problem of a file in one run', () => {
    const file = writeTopology(
      topology({
        steps: [
          '    - filter: event.data.customerid == "c1"',
          '    - enrich: { table: customer, key: event.data.customerId }',
          '    - map: { orderId: event.data.orderI }',
        ].join('\n'),
        sinks: '    - clickhouse: { table: t, columns: [orderId, nope] }',
      }),
    );
    const codes = checkFile(file, { env: {} })
      .diagnostics.filter((d) => d.severity === 'error')
      .map((d) => d.code);
    expect(codes).toEqual(['expr-unknown-field', 'ref-unknown-table', 'expr-unknown-field', 'sink-unknown-column']);
  });

  it('interpolates ${VAR:-default} from the environment, typed like YAML', () => {
    // In a flow map ({ }) a plain ${...} would end at the brace: use block style, or quotes (then it stays a string).
    const yaml = topology({ extra: '  topics:\n    orders.events:\n      partitions: ${PARTS:-3}\n' }).replace(
      'topic: orders.events',
      'topic: ${TOPIC:-orders.events}',
    );
    const file = writeTopology(yaml);
    const a = checkFile(file, { env: {} });
    expect(a.checked?.topology.spec.source.topic).toBe('orders.events');
    expect(a.checked?.topology.spec.topics['orders.events']?.partitions).toBe(3);
    const b = checkFile(file, { env: { TOPIC: 'other', PARTS: '6' } });
    expect(b.checked?.topology.spec.source.topic).toBe('other');
  });

  it('lints: undeclared topics, unused tables, stateful steps without id', () => {
    const { diagnostics } = checkFile(writeTopology(topology({ steps: '    - dedupe: { key: event.eventId }' })), {
      env: {},
    });
    const codes = new Set(diagnostics.map((d) => d.code));
    expect(codes).toContain('lint-topic-undeclared');
    expect(codes).toContain('lint-unused-table');
    expect(codes).toContain('lint-stateful-without-id');
    expect(diagnostics.every((d) => d.severity !== 'error')).toBe(true);
  });

  it('checks that a module exports the named function (when compiling)', async () => {
    const r = await loadTopology(
      writeTopology(topology({ steps: '    - module: { path: ./modules/explode-items.ts, export: nope }' })),
      { env: {} },
    );
    expect(r.plan).toBeUndefined();
    expect(r.diagnostics.map((d) => d.code)).toContain('ref-module-not-function');
  });

  it('derives stable step ids: inserting a step does not rename the others', () => {
    const ids = (steps: string) =>
      checkFile(writeTopology(topology({ steps })), { env: {} }).checked!.steps.map((s) => s.id);
    const before = ids(
      '    - filter: event.data.totalAmount > 1\n    - enrich: { table: customers, key: event.data.customerId }',
    );
    const after = ids(
      '    - filter: "true"\n    - filter: event.data.totalAmount > 1\n    - enrich: { table: customers, key: event.data.customerId }',
    );
    expect(before[0]).toMatch(/^filter-[0-9a-f]{6}$/);
    expect(before[1]).toBe('enrich-customers');
    expect(after.slice(1)).toEqual(before);
  });

  it('accepts the example topologies with no errors', () => {
    for (const name of ['order-enrichment', 'order-analytics', 'order-status']) {
      const { diagnostics } = checkFile(`${__dirname}/../../../topologies/${name}.yaml`, { env: {} });
      expect(diagnostics.filter((d) => d.severity !== 'info').map(formatDiagnostic)).toEqual([]);
    }
  });
});
