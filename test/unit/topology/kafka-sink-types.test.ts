// Types through to a Kafka sink's Avro schema: what flows into each field must be encodable as the field's type
// (errors at value.schema, with the fix), nested records, arrays and maps included; a value that can be null into a
// field that cannot hold it is a warning; untyped values (a module's dyn output) are not checked.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkFile } from '../../../pipelines/compile/compile.ts';
import { formatDiagnostic } from '../../../pipelines/topology/diagnostics.ts';
import { scratch, topology, writeTopology } from './helpers.ts';

/** Checks `map` (YAML flow mapping) into a kafka sink whose schema has `fields`; the problems, formatted. */
function check(map: string, fields: unknown[], extraSteps = '') {
  const dir = scratch();
  writeFileSync(join(dir, 'schemas/Out.avsc'), JSON.stringify({ type: 'record', name: 'Out', namespace: 'x', fields }));
  const steps = `    - filter: event.eventType == 'OrderPlaced'\n${extraSteps}    - map: ${map}`;
  const sinks = '    - kafka: { topic: out, key: orderId, value: { schema: schemas/Out.avsc } }';
  const r = checkFile(writeTopology(topology({ steps, sinks }), 'x.yaml', dir), { env: {} });
  return r.diagnostics
    .filter((d) => d.code !== 'lint-topic-undeclared' && d.code !== 'lint-unused-table')
    .map(formatDiagnostic);
}

const LONG = { type: 'long' };
const MILLIS = { type: 'long', logicalType: 'timestamp-millis' };

test.each([
  [
    'a string into a long',
    '{ orderId: event.data.orderId, n: event.data.customerId }',
    [{ name: 'n', type: 'long' }],
    /field 'n': a string cannot go into long \(convert it in a map step \(double\(x\)\)\) \[sink-column-type\]/,
  ],
  [
    'a string into a double',
    '{ orderId: event.data.orderId, n: event.data.customerId }',
    [{ name: 'n', type: 'double' }],
    /field 'n': a string cannot go into double/,
  ],
  [
    'a list into a scalar',
    '{ orderId: event.data.orderId, n: "event.data.items.map(i, i.productId)" }',
    [{ name: 'n', type: 'int' }],
    /field 'n': a list<string> cannot go into int \(make it \{"type":"array","items":"string"\}\)/,
  ],
  [
    'a record into a scalar',
    '{ orderId: event.data.orderId, n: event.data }',
    [{ name: 'n', type: 'string' }],
    /field 'n': a \S*OrderPlacedData\S* cannot go into string \(make it \{"type":"record","name":"OrderPlacedData","fields":"…"\}\)/,
  ],
  [
    'a number that may have a fraction into a long',
    '{ orderId: event.data.orderId, n: event.data.totalAmount }',
    [{ name: 'n', type: LONG }],
    /field 'n': a double, which may have a fraction, cannot go into long \(round it in a map step \(int\(x\)\), or make it "double"\)/,
  ],
  [
    'a field of a nested record',
    '{ orderId: event.data.orderId, d: event.data }',
    [
      {
        name: 'd',
        type: { type: 'record', name: 'D', fields: [{ name: 'totalAmount', type: 'int' }] },
      },
    ],
    /field 'd.totalAmount': a double, which may have a fraction, cannot go into int/,
  ],
  [
    'a field of the records in an array',
    '{ orderId: event.data.orderId, lines: event.data.items }',
    [
      {
        name: 'lines',
        type: {
          type: 'array',
          items: { type: 'record', name: 'L', fields: [{ name: 'productId', type: 'long' }] },
        },
      },
    ],
    /field 'lines\[\]\.productId': a string cannot go into long/,
  ],
  [
    'a nested field the record flowing in lacks',
    '{ orderId: event.data.orderId, d: event.data }',
    [
      {
        name: 'd',
        type: { type: 'record', name: 'D', fields: [{ name: 'coupon', type: 'string' }] },
      },
    ],
    /field 'd.coupon' of record x.D is not in the \S*OrderPlacedData\S* that flows in .*\[sink-unknown-column\]/,
  ],
])('an error: %s', (_, map, fields, message) => {
  const shown = check(map, [{ name: 'orderId', type: 'string' }, ...fields]);
  expect(shown).toEqual([expect.stringMatching(message)]);
  expect(shown[0]).not.toMatch(/warning:/);
});

test('a value that can be null into a field that cannot hold it is a warning, with the union to write', () => {
  const shown = check('{ orderId: event.data.orderId, channel: event.data.channel }', [
    { name: 'orderId', type: 'string' },
    { name: 'channel', type: 'string' },
  ]);
  expect(shown).toEqual([
    expect.stringMatching(
      /warning: field 'channel': a string\? can be null, string cannot hold it \(make it \["null","string"\] with "default": null/,
    ),
  ]);
});

test('what fits passes: whole numbers into int and long, times into timestamp-millis, unions, maps of records', () => {
  const shown = check(
    '{ orderId: event.data.orderId, n: size(event.data.items), q: event.timestamp - event.timestamp, at: event.timestamp, ' +
      'total: event.data.totalAmount, channel: event.data.channel, d: event.data, byId: event.data.items }',
    [
      { name: 'orderId', type: 'string' },
      { name: 'n', type: 'int' },
      { name: 'q', type: 'long' },
      { name: 'at', type: MILLIS },
      { name: 'total', type: ['null', 'double'] },
      { name: 'channel', type: ['null', 'string'], default: null },
      {
        name: 'd',
        type: {
          type: 'record',
          name: 'D',
          fields: [
            { name: 'orderId', type: 'string' },
            { name: 'totalAmount', type: 'double' },
            { name: 'coupon', type: 'string', default: '' },
          ],
        },
      },
      { name: 'byId', type: { type: 'array', items: { type: 'map', values: ['string', 'double'] } } },
    ],
  );
  expect(shown).toEqual([]);
});

test('an untyped value (a module output declared dyn) is not checked', () => {
  const module = `    - module: { path: ./modules/participants.ts, export: answer, output: { orderId: string, n: dyn } }\n`;
  const dir = scratch();
  writeFileSync(
    join(dir, 'schemas/Out.avsc'),
    JSON.stringify({
      type: 'record',
      name: 'Out',
      fields: [
        { name: 'orderId', type: 'string' },
        { name: 'n', type: 'long' },
      ],
    }),
  );
  const file = writeTopology(
    topology({
      steps: module,
      sinks: '    - kafka: { topic: out, key: orderId, value: { schema: schemas/Out.avsc } }',
    }),
    'x.yaml',
    dir,
  );
  const codes = checkFile(file, { env: {} }).diagnostics.map((d) => d.code);
  expect(codes.filter((c) => c === 'sink-column-type' || c === 'lint-field-nullable')).toEqual([]);
});

test('a fold field that every handler sets is never null in what it emits; one set by some handlers can be', () => {
  const fold = `    - fold:
        key: event.data.orderId
        initial: { n: "0" }
        on:
          OrderPlaced: { orderId: event.data.orderId, n: state.n + 1, channel: event.data.customerId }
          OrderShipped: { orderId: event.data.orderId, n: state.n + 1 }
`;
  const dir = scratch();
  writeFileSync(
    join(dir, 'schemas/Out.avsc'),
    JSON.stringify({
      type: 'record',
      name: 'Out',
      fields: [
        { name: 'orderId', type: 'string' },
        { name: 'n', type: 'long' },
        { name: 'channel', type: 'string' },
      ],
    }),
  );
  const sinks = '    - kafka: { topic: out, key: orderId, value: { schema: schemas/Out.avsc } }';
  const r = checkFile(writeTopology(topology({ steps: fold, sinks }), 'x.yaml', dir), { env: {} });
  expect(r.diagnostics.filter((d) => d.code === 'lint-field-nullable').map((d) => d.message)).toEqual([
    "field 'channel': a string? can be null, string cannot hold it",
  ]);
});
