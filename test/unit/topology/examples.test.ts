// The example topologies: their declarative cases pass (the same runner as `pipelines test`), the files open
// with the editor schema line, and a few driver-level checks a user would write in jest.
import { readdirSync, readFileSync } from 'node:fs';
import { findTestFiles, runTestFile } from '../../../pipelines/testing/cases.ts';
import { TopologyTestDriver } from '../../../pipelines/testing/driver.ts';
import { placed, TOPOLOGIES } from './helpers.ts';

describe('example topologies', () => {
  const files = findTestFiles(TOPOLOGIES);
  it('every example topology has a test file', () => {
    const topologies = readdirSync(TOPOLOGIES).filter((f) => f.endsWith('.yaml') && !f.endsWith('.test.yaml'));
    expect(topologies.length).toBeGreaterThanOrEqual(3);
    for (const t of topologies)
      expect(files.map((f) => f.split('/').pop())).toContain(t.replace('.yaml', '.test.yaml'));
  });
  it.each(files.map((f) => [f.split('/').pop()!, f]))('%s: every case passes', async (_name, file) => {
    const r = await runTestFile(file);
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const failed = r.cases.filter((c) => !c.passed).map((c) => `${c.name}: ${c.failures.join('; ')}`);
    expect(failed).toEqual([]);
    expect(r.cases.length).toBeGreaterThan(0);
  });
  it.each(readdirSync(TOPOLOGIES).filter((f) => f.endsWith('.yaml')))(
    '%s starts with the yaml-language-server schema line',
    (f) => {
      const schema = f.endsWith('.test.yaml') ? 'topology-test.schema.json' : 'topology.schema.json';
      expect(readFileSync(`${TOPOLOGIES}/${f}`, 'utf8').split('\n')[0]).toBe(
        `# yaml-language-server: $schema=./${schema}`,
      );
    },
  );
});

describe('TopologyTestDriver on order-status', () => {
  it('pipes events, reads each sink and the state of the fold', async () => {
    const d = await TopologyTestDriver.load(`${TOPOLOGIES}/order-status.yaml`, { env: {} });
    d.pipe([
      { value: placed() },
      {
        value: { eventId: 'e2', eventType: 'OrderCancelled', timestamp: 61_000, data: { orderId: 'o1', reason: 'r' } },
      },
    ]);
    expect(d.output('clickhouse:order_summary').map((r) => (r as { status: string }).status)).toEqual([
      'PLACED',
      'CANCELLED',
    ]);
    expect(d.state('order-state')).toContainEqual({
      key: 'o1',
      value: expect.objectContaining({ status: 'CANCELLED' }),
    });
    expect(d.output('kafka:orders.status')[1]).toMatchObject({
      key: 'o1',
      value: { status: 'CANCELLED', cancelReason: 'r' },
    });
  });
  it('rejects an input event that does not match the Avro schemas, naming the field', async () => {
    const d = await TopologyTestDriver.load(`${TOPOLOGIES}/order-status.yaml`, { env: {} });
    expect(() => d.pipe({ value: placed({}, { totalAmount: 'lots' }) })).toThrow(
      /data.totalAmount: expected double, got "lots"/,
    );
    expect(() => d.pipe({ value: { ...placed(), data: {}, eventType: 'OrderLost' } })).toThrow(
      /eventType 'OrderLost' is not one of/,
    );
  });
});
