// What one buffered row costs in the heap (issue 16, memory that fits a pod): the rows the shipped topologies hand
// their sinks, held as a sink holds them (ClickHouse: the row objects; Kafka: the encoded message with its key),
// measured as the heap growth of holding 100,000 independent copies. The memory budget (runtime/memory.ts) sizes
// the sink buffers by the figure it rounds up to.
//   node --expose-gc test/bench/row-bytes.ts
import { readFileSync } from 'node:fs';
import avsc from 'avsc';
import { customerSnapshots, orderLifecycleStream, productSnapshots } from '../../pipelines/loadgen/orders.ts';
import { TopologyTestDriver } from '../../pipelines/testing/driver.ts';

const N = 100_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

function heldBytes(make: (i: number) => unknown): number {
  gc!();
  const before = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  const held: unknown[] = new Array(N);
  for (let i = 0; i < N; i++) held[i] = make(i);
  gc!();
  const after = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  if (held.length !== N) throw new Error('unreachable');
  return (after - before) / N;
}

async function sinkRows(file: string): Promise<Record<string, unknown[]>> {
  const d = await TopologyTestDriver.load(file, { env: {} });
  const tables = d.plan.topology.spec.tables;
  if (tables.customers) for (const c of customerSnapshots()) d.table('customers').upsert(c);
  if (tables.products) for (const p of productSnapshots()) d.table('products').upsert(p);
  d.pipeValues([...orderLifecycleStream(2000, { seed: 3 })]);
  d.flush();
  return d.outputs();
}

const lines: string[] = [];
for (const [sink, rows] of Object.entries(await sinkRows('topologies/order-analytics.yaml'))) {
  if (rows.length === 0) continue;
  const row = (i: number) =>
    structuredClone((rows[i % rows.length] as { value?: unknown }).value ?? rows[i % rows.length]);
  lines.push(`| order-analytics | ${sink} | ${Math.round(heldBytes(row))} |`);
}
const enriched = avsc.Type.forSchema(
  JSON.parse(readFileSync('topologies/schemas/EnrichedOrderLine.avsc', 'utf8')) as avsc.Schema,
);
for (const [sink, rows] of Object.entries(await sinkRows('topologies/order-enrichment.yaml'))) {
  if (rows.length === 0) continue;
  const message = (i: number) => {
    const r = rows[i % rows.length] as { key: unknown; value: unknown };
    // The wire format: magic byte, schema id, Avro body; a fresh buffer each, as the encoder gives.
    const body = enriched.toBuffer(r.value);
    const value = Buffer.allocUnsafe(5 + body.length);
    body.copy(value, 5);
    return { key: String(r.key), value, partition: i % 3 };
  };
  lines.push(`| order-enrichment | ${sink} | ${Math.round(heldBytes(message))} |`);
}
console.log(`${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${N} rows held per sink`);
console.log('| topology | sink | bytes per buffered row |\n| --- | --- | --- |');
for (const l of lines) console.log(l);
