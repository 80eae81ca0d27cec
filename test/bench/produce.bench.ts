// The worker's send path (pipelines/kafka/produce.ts) beside the client's KafkaJS-layer send, on one producer
// configured as the worker's, to one topic, in one process: sends alternate, batch for batch, so that both meet the
// same broker and the same machine. Each message is a sink's: a 36-character key, a 150-byte value, a traceparent.
//   node test/bench/produce.bench.ts [messages per round=200000] [rounds=7] [batch=5000]
import { cpus } from 'node:os';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { clientConfig } from '../../pipelines/kafka/connection.ts';
import { newTraceparent } from '../../pipelines/kafka/headers.ts';
import { type KafkaMessage, sendBatch } from '../../pipelines/kafka/produce.ts';
import { createTopics, stack, testTopics } from '../integration/harness.ts';

const [perRound = 200_000, rounds = 7, batch = 5000] = process.argv.slice(2).map(Number);
const topics = testTopics('produce-bench');
await createTopics(topics);
const kafka = new KafkaJS.Kafka({
  ...clientConfig(stack().conn.kafka),
  kafkaJS: { logLevel: KafkaJS.logLevel.ERROR },
} as never);
// As the worker's producer (runtime/outputs.ts), idempotent.
const producer = kafka.producer({
  'linger.ms': 5,
  'compression.type': 'lz4',
  'queue.buffering.max.messages': 1_000_000,
  'enable.idempotence': true,
} as never);
await producer.connect();

const value = Buffer.alloc(150, 7);
const messages = (n: number): KafkaMessage[] =>
  Array.from({ length: n }, (_, i) => ({
    key: `order-${String(i).padStart(30, '0')}`,
    value,
    headers: { traceparent: newTraceparent() },
  }));

const ways: Record<string, (m: KafkaMessage[]) => Promise<unknown>> = {
  'KafkaJS layer send': (m) => producer.send({ topic: topics.ORDERS_TOPIC, messages: m as never }),
  sendBatch: (m) => sendBatch(producer, topics.ORDERS_TOPIC, m),
};

const results: Record<string, Array<{ rate: number; cpuUs: number }>> = Object.fromEntries(
  Object.keys(ways).map((name) => [name, []]),
);
// The first round warms the connection and the code up, and is not counted.
for (let round = 0; round <= rounds; round++) {
  for (const [name, send] of Object.entries(ways)) {
    const batches = Array.from({ length: Math.ceil(perRound / batch) }, () => messages(batch));
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (const b of batches) await send(b);
    const ms = performance.now() - started;
    const used = process.cpuUsage(cpu);
    const n = batches.length * batch;
    if (round === 0) continue;
    results[name]!.push({ rate: (n / ms) * 1000, cpuUs: (used.user + used.system) / n });
    console.log(`round ${round} ${name.padEnd(18)} ${Math.round((n / ms) * 1000)} messages/s`);
  }
}
await producer.disconnect();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const spread = (xs: number[], f: (x: number) => string) =>
  `${f(median(xs))} [${f(Math.min(...xs))}..${f(Math.max(...xs))}]`;
console.log(
  `\n${new Date().toISOString().slice(0, 10)}; ${cpus().length} cores, ${cpus()[0]?.model}; ${perRound} messages a round in batches of ${batch}, ${rounds} rounds\n`,
);
console.log('| send | messages/s | process CPU-µs per message |\n| --- | --- | --- |');
for (const [name, rs] of Object.entries(results)) {
  const rate = spread(
    rs.map((r) => r.rate),
    (x) => `${(x / 1000).toFixed(1)}k`,
  );
  const cpu = spread(
    rs.map((r) => r.cpuUs),
    (x) => x.toFixed(2),
  );
  console.log(`| ${name} | ${rate} | ${cpu} |`);
}
const ratio =
  median(results.sendBatch!.map((r) => r.cpuUs)) / median(results['KafkaJS layer send']!.map((r) => r.cpuUs));
console.log(`\nsendBatch's CPU per message: ${ratio.toFixed(2)}x the layer's`);
