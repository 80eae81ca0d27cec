// Per-event cost of compiled CEL expressions and of whole plans. Run: node test/bench/expressions.bench.ts
// Method: warm up, then 9 runs of N evaluations each; prints the median (and min..max) ns per evaluation.
import { resolve } from 'node:path';
import { loadPlan } from '../../pipelines/runtime/load.ts';
import type { SourceRecord } from '../../pipelines/runtime/plan.ts';
import { loadAvsc, recordConstructors } from '../../pipelines/topology/avro.ts';
import { ExpressionRuntime } from '../../pipelines/topology/expressions.ts';

const TOPOLOGIES = resolve(process.cwd(), 'topologies');
const RUNS = 9;
const PLAN_BATCHES = 12; // distinct batches per run: dedupe and windows see new events every time

function measure(name: string, n: number, fn: (i: number) => unknown, perCall = 1): void {
  let sink: unknown;
  for (let i = 0; i < Math.min(n, 50_000); i++) sink = fn(i); // warm-up (n calls at most)
  const per: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink = fn(i);
    per.push(Number(process.hrtime.bigint() - t0) / n / perCall);
  }
  per.sort((a, b) => a - b);
  const f = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} µs` : `${x.toFixed(0)} ns`);
  console.log(`${name.padEnd(58)} median ${f(per[RUNS >> 1]!).padStart(9)}  (${f(per[0]!)}..${f(per[RUNS - 1]!)})`);
  if (sink === Symbol.for('never')) console.log('');
}

const schema = loadAvsc(`${TOPOLOGIES}/schemas/OrderPlaced-v2.avsc`);
const runtime = new ExpressionRuntime(recordConstructors(schema.type));
const make = (i: number) => ({
  eventId: `e${i}`,
  eventType: 'OrderPlaced',
  timestamp: 60_000 + i,
  data: {
    orderId: `o${i}`,
    customerId: `c${i % 100}`,
    items: [{ productId: `p${i % 10}`, quantity: 2, price: 9.5 }],
    totalAmount: 19 + (i % 7),
  },
});
const events = Array.from({ length: 1024 }, (_, i) => schema.type.fromBuffer(schema.type.toBuffer(make(i))));
const vars = events.map((event) => ({ event }));

console.log(
  `node ${process.version}, ${RUNS} runs each\n-- one compiled expression, per evaluation, on an avsc-decoded OrderPlaced`,
);
const exprs = [
  "event.eventType == 'OrderPlaced'",
  'event.data.totalAmount',
  'event.data.totalAmount * 2',
  'event.data.totalAmount > 20 && event.data.customerId.startsWith("c1")',
  'size(event.data.items)',
  'event.data.items.map(i, i.price * i.quantity)',
  "event.data.channel != null ? event.data.channel : 'web'",
];
for (const src of exprs) {
  const e = runtime.compile(src);
  measure(src, 500_000, (i) => e.evaluate(vars[i & 1023]!));
}
const js = (v: { event: { eventType: string } }) => v.event.eventType === 'OrderPlaced';
measure('baseline: the same filter as a plain JS function', 2_000_000, (i) => js(vars[i & 1023] as never));

console.log('\n-- whole plans, per event (batches of 1000, offline sinks in memory, no encoding)');
for (const name of ['order-status', 'order-analytics', 'order-enrichment']) {
  const plan = await loadPlan(`${TOPOLOGIES}/${name}.yaml`, { env: {} });
  const reader = plan.readerTypes.get('com.orders.events.OrderPlaced')!;
  if ('customers' in plan.topics.tables)
    for (let c = 0; c < 100; c++)
      plan.tables.upsert('customers', `c${c}`, {
        customerId: `c${c}`,
        name: 'n',
        segment: ['smb', 'consumer'][c % 2],
        country: 'FR',
      });
  if ('products' in plan.topics.tables)
    for (let p = 0; p < 10; p++)
      plan.tables.upsert('products', `p${p}`, { productId: `p${p}`, name: 'n', category: 'c', listPrice: 1 });
  let offset = 0;
  const batch = (): SourceRecord[] =>
    Array.from({ length: 1000 }, (_, i) => {
      const o = offset++;
      return {
        topic: 'orders.events',
        partition: i % 3,
        offset: o,
        key: null,
        value: reader.fromBuffer(reader.toBuffer(make(o))),
        timestamp: 60_000 + o,
        headers: {},
      };
    });
  const batches = Array.from({ length: PLAN_BATCHES * (RUNS + 1) }, batch);
  let b = 0;
  measure(`${name} (per event)`, PLAN_BATCHES, () => plan.process(batches[b++]!, 0), 1000);
}
