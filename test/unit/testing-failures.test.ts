// A failing test case explains itself: where the expectation is written (file:line:col), what came out beside
// what was expected, and for a row nothing matches, the closest actual row and the fields that differ.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runTestFile } from '../../pipelines/testing/cases.ts';
import { scratch, TOPOLOGIES } from './topology/helpers.ts';

const PLACED =
  '{ eventId: e1, eventType: OrderPlaced, timestamp: 1000, data: { orderId: o1, customerId: c1, items: [{ productId: p1, quantity: 2, price: 9.5 }], totalAmount: 19.0 } }';
const PLACED_2 =
  '{ eventId: e2, eventType: OrderPlaced, timestamp: 2000, data: { orderId: o2, customerId: c2, items: [{ productId: p1, quantity: 1, price: 5.0 }], totalAmount: 5.0 } }';

function caseFile(expectations: string, ordered = true): string {
  const file = join(scratch(), 'forward.test.yaml');
  writeFileSync(
    file,
    `topology: ${join(TOPOLOGIES, 'order-forward.yaml')}
cases:
  - name: two orders
    input:
      - value: ${PLACED}
      - value: ${PLACED_2}
    expect:
      ordered: ${ordered}
      sinks:
        kafka:orders.totals:
${expectations}
`,
  );
  return file;
}

test('an unmatched row: its line in the test file, the closest actual row, the fields that differ, the rest', async () => {
  const file = caseFile(
    [
      '          - { key: o1, value: { orderId: o1, totalAmount: 19.0 } }',
      '          - { key: o2, value: { orderId: o2, customerId: c9, totalAmount: 6.0 } }',
    ].join('\n'),
    false,
  );
  const r = await runTestFile(file);
  const [c] = r.cases;
  expect(c!.passed).toBe(false);
  expect(c!.failures).toHaveLength(2);
  const [miss, rest] = c!.failures as [string, string];
  expect(miss).toMatch(/forward\.test\.yaml:12:13: kafka:orders.totals: no row matches/);
  expect(miss).toMatch(/closest: \{"key":"o2","value":\{"orderId":"o2","customerId":"c2"/);
  expect(miss).toMatch(/differs: value\.customerId: expected "c9", got "c2"; value\.totalAmount: expected 6, got 5/);
  expect(rest).toMatch(/rows that matched no expected row:\n\s+\{"key":"o2"/);
});

test('a count that differs shows the expected rows and the actual ones', async () => {
  const file = caseFile('          - { key: o1, value: { orderId: o1 } }');
  const [c] = (await runTestFile(file)).cases;
  expect(c!.failures).toHaveLength(1);
  expect(c!.failures[0]).toMatch(/:11:\d+: kafka:orders.totals: expected 1 row\(s\), got 2/);
  expect(c!.failures[0]).toMatch(/expected:\n\s+\{"key":"o1","value":\{"orderId":"o1"\}\}\n\s+got:\n\s+\{"key":"o1"/);
});

test('an input record its schemas do not accept: its line in the test file, and the fields', async () => {
  const file = join(scratch(), 'bad-input.test.yaml');
  writeFileSync(
    file,
    `topology: ${join(TOPOLOGIES, 'order-forward.yaml')}
cases:
  - name: the second input misses a field
    input:
      - value: ${PLACED}
      - value: { eventId: e2, eventType: OrderPlaced, timestamp: 2000, data: { orderId: o2, items: [], totalAmount: 5.0 } }
    expect:
      sinks: {}
`,
  );
  const [c] = (await runTestFile(file)).cases;
  expect(c!.failures).toEqual([
    expect.stringMatching(/bad-input\.test\.yaml:6:9: input 2: data\.customerId: expected string/),
  ]);
});
