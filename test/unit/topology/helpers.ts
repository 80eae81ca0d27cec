// Test helpers: write a topology (with the example schemas and modules beside it) into a temporary folder.
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const TOPOLOGIES = resolve(__dirname, '../../../topologies');

export function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'topology-'));
  cpSync(join(TOPOLOGIES, 'schemas'), join(dir, 'schemas'), { recursive: true });
  cpSync(join(TOPOLOGIES, 'modules'), join(dir, 'modules'), { recursive: true });
  return dir;
}

export function writeTopology(text: string, name = 'x.yaml', dir = scratch()): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** A minimal valid topology around the given steps and sinks (YAML lines, indented by 4). */
export function topology(
  opts: { steps?: string; sinks?: string; tables?: string; extra?: string; source?: string } = {},
): string {
  return `apiVersion: pipelines/v1
kind: Topology
metadata: { name: t }
spec:
  source:
    topic: orders.events
    group: t
    value: { format: avro, schemas: [schemas/OrderPlaced-v2.avsc, schemas/OrderShipped.avsc] }
${opts.source ?? ''}  tables:
    customers: { topic: customers.snapshot, key: customerId, schema: schemas/Customer.avsc }
${opts.tables ?? ''}  steps:
${opts.steps ?? '    - filter: "true"'}
  sinks:
${opts.sinks ?? '    - clickhouse: { table: t }'}
  errors: { deadLetter: dlq }
${opts.extra ?? ''}`;
}

export const placed = (over: Record<string, unknown> = {}, data: Record<string, unknown> = {}) => ({
  eventId: 'e1',
  eventType: 'OrderPlaced',
  timestamp: 60_000,
  data: {
    orderId: 'o1',
    customerId: 'c1',
    items: [{ productId: 'p1', quantity: 2, price: 2.5 }],
    totalAmount: 5,
    ...data,
  },
  ...over,
});

/** A topology on a JSON topic (no schemas: `event` is dynamic), with the given steps, to one ClickHouse sink. */
export function jsonTopology(stepsYaml: string, extra = ''): string {
  return `apiVersion: pipelines/v1
kind: Topology
metadata: { name: t }
spec:
  source: { topic: in, group: t, value: { format: json }, eventTime: event.t }
  steps:
${stepsYaml}
  sinks:
    - clickhouse: { table: out }
  errors: { deadLetter: dlq }
${extra}`;
}
