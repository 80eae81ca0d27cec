// Codec benchmark: µs per event for the cached synchronous path versus @kafkajs/confluent-schema-registry's own
// async encode/decode, on a ~120-byte OrderPlaced. Needs the local registry (source deploy/local/env.sh).
// Run: node test/bench/codec.bench.ts [events-per-run]   (median of 5 runs, with min–max)

import type { Schema } from 'avsc';
import avro from 'avsc';
import { AvroCodec, RegistryClient } from '../../pipelines/codec/index.ts';
import { orderPlacedV1, orderPlacedV2, placed } from '../fixtures/codec/order-events.ts';

const N = Number(process.argv[2] ?? 200_000);
const RUNS = 5;
const url = process.env.PIPELINES_REGISTRY_URL ?? 'http://127.0.0.1:18081/apis/ccompat/v7';

const registry = new RegistryClient({ url });
const subject = `codec-bench-${Date.now()}-value`;
const producer = new AvroCodec({ registry });
const v1 = await producer.encoder(subject, orderPlacedV1);
const v2 = await producer.encoder(subject, orderPlacedV2);

// UUID event ids, as producers send them: brings the Avro body to ~120 bytes.
const uuid = (n: number) => `6f1c2a4e-0b7d-4c1e-9a3b-${String(n).padStart(12, '0')}`;
const values = Array.from({ length: 1024 }, (_, n) => placed(n, { eventId: uuid(n) }));
const framedV1 = values.map((v) => v1.encode(v));
const framedV2 = values.map((v) => v2.encode({ ...v, channel: null }));
const body = framedV1[0]!.length - 5;

const sameReader = new AvroCodec({ registry, readers: [orderPlacedV1] });
const newerReader = new AvroCodec({ registry, readers: [orderPlacedV2] });
await sameReader.prepare(framedV1);
await newerReader.prepare([...framedV1, ...framedV2]);
const lib = registry.library;
await lib.decode(framedV1[0]!); // warm its cache
const rawType = avro.Type.forSchema(orderPlacedV1 as Schema);
const bodies = framedV1.map((b) => b.subarray(5));

let sink = 0;
function syncCase(fn: (i: number) => unknown): () => Promise<void> {
  return async () => {
    for (let i = 0; i < N; i++) if (fn(i & 1023) !== undefined) sink++;
  };
}
function asyncCase(fn: (i: number) => Promise<unknown>, n: number): () => Promise<void> {
  return async () => {
    for (let i = 0; i < n; i++) if ((await fn(i & 1023)) !== undefined) sink++;
  };
}

const asyncN = Math.max(1, Math.floor(N / 4));
const slowN = Math.max(1, Math.floor(N / 100));
const cases: Array<[string, number, () => Promise<void>]> = [
  ['decode  avsc fromBuffer (no framing, floor)', N, syncCase((i) => rawType.fromBuffer(bodies[i]!))],
  ['decode  codec sync, writer = reader', N, syncCase((i) => sameReader.decode(framedV1[i]!))],
  ['decode  codec sync, v1 writer -> v2 reader', N, syncCase((i) => newerReader.decode(framedV1[i]!))],
  ['decode  library async, writer schema', asyncN, asyncCase((i) => lib.decode(framedV1[i]!), asyncN)],
  [
    'decode  library async, v2 readerSchema',
    slowN,
    asyncCase((i) => lib.decode(framedV1[i]!, { AVRO: { readerSchema: orderPlacedV2 as never } }), slowN),
  ],
  ['encode  avsc toBuffer (no framing, floor)', N, syncCase((i) => rawType.toBuffer(values[i]!))],
  ['encode  codec sync', N, syncCase((i) => v1.encode(values[i]!))],
  ['encode  library async', asyncN, asyncCase((i) => lib.encode(v1.schemaId, values[i]!), asyncN)],
];

console.log(`node ${process.version}, Avro body ${body} bytes (+5 header), ${RUNS} runs, median [min–max] µs/event`);
for (const [name, n, fn] of cases) {
  await fn(); // warm-up
  const times: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const start = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - start) / 1_000 / n);
  }
  times.sort((a, b) => a - b);
  const f = (x: number) => x.toFixed(3);
  console.log(`${name.padEnd(46)} ${f(times[2]!).padStart(8)}  [${f(times[0]!)}–${f(times[4]!)}]  (${n} events/run)`);
}
if (sink === 0) console.log('');
