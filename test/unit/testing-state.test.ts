// `expect.state` in a test case: the entries a stateful step holds when the input ends, matched field by field
// like sink rows; a step that holds no state is a located diagnostic before any case runs.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runTestFile } from '../../pipelines/testing/cases.ts';
import { jsonTopology, scratch, TOPOLOGIES, writeTopology } from './topology/helpers.ts';

const PLACED =
  '{ eventId: e1, eventType: OrderPlaced, timestamp: 1000, data: { orderId: o1, customerId: c1, items: [], totalAmount: 4.0 } }';

function statusCase(state: string): string {
  const file = join(scratch(), 'status.test.yaml');
  writeFileSync(
    file,
    `topology: ${join(TOPOLOGIES, 'order-status.yaml')}
cases:
  - name: one order
    input:
      - value: ${PLACED}
    expect:
      state:
${state}
`,
  );
  return file;
}

test('passes when the fold holds the expected entries (only the fields listed are checked)', async () => {
  const r = await runTestFile(statusCase('        order-state:\n          - { key: o1, value: { status: PLACED } }'));
  expect(r.diagnostics).toEqual([]);
  expect(r.cases[0]!.failures).toEqual([]);
});

test('a mismatch shows where the entry is written, the closest actual entry and what differs', async () => {
  const r = await runTestFile(statusCase('        order-state:\n          - { key: o1, value: { status: PAID } }'));
  const [failure] = r.cases[0]!.failures;
  expect(r.cases[0]!.failures).toHaveLength(2);
  expect(failure).toMatch(/status\.test\.yaml:9:13: state of 'order-state': no row matches/);
  expect(failure).toMatch(/closest: \{"key":"o1","value":\{"orderId":"o1","status":"PLACED"/);
  expect(failure).toMatch(/differs: value\.status: expected "PAID", got "PLACED"/);
});

test('a count that differs lists the actual entries', async () => {
  const r = await runTestFile(statusCase('        order-state: []'));
  expect(r.cases[0]!.failures[0]).toMatch(
    /:8:\d+: state of 'order-state': expected 0 row\(s\), got 1\n\s+got:\n\s+\{"key":"o1","value":\{"orderId":"o1"/,
  );
});

test('a step that does not exist, or holds no state: a located diagnostic, no case run', async () => {
  const r = await runTestFile(
    statusCase('        order-stat: []\n        summary-fields: [{ key: o1 }]\n        dedupe-events: [{ key: e1 }]'),
  );
  expect(r.cases).toEqual([]);
  expect(r.diagnostics.map((d) => [d.code, d.line, d.column, d.message, d.hint])).toEqual([
    ['test-state-step', 8, 9, "no step 'order-stat' in the topology", "did you mean 'order-state'?"],
    ['test-state-step', 9, 9, "step 'summary-fields' (map) holds no state to expect", expect.stringMatching(/known/)],
  ]);
});

test('an aggregate: its open windows as the input left them, before the end-of-input flush closes them', async () => {
  const topology = writeTopology(
    jsonTopology(
      '    - id: a\n      aggregate: { window: { tumbling: 10s }, groupBy: [event.k], measures: { n: count() } }',
    ),
  );
  const file = join(topology, '..', 'x.test.yaml');
  writeFileSync(
    file,
    `topology: ./x.yaml
cases:
  - name: two groups, one window each
    input:
      - value: { t: 1000, k: a }
      - value: { t: 2000, k: a }
      - value: { t: 3000, k: b }
    expect:
      state:
        a:
          - { key: a, windowStart: 0, value: { n: 2, windowEnd: 10000 } }
          - { key: b, windowStart: 0, value: { n: 1 } }
      sinks:
        clickhouse:out: [{ k: a, n: 2 }, { k: b, n: 1 }]
`,
  );
  const r = await runTestFile(file);
  expect(r.diagnostics).toEqual([]);
  expect(r.cases[0]!.failures).toEqual([]);
});
