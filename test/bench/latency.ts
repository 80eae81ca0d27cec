// End-to-end latency under a steady load (issue 16: p50 and p99 at half the maximum rate, 1 s flushes). Events are
// written at `rate` per second, each stamped with the wall clock as its event time when it is produced; the worker
// (`pipelines run`, its own process) runs a ladder rung whose output rows keep that time (`at`); a read_committed
// consumer here takes now − at for every row it gets. So it measures produce → broker → worker → (its flush or
// transaction) → broker → a consumer, on this machine. The first `warmup` seconds are left out.
//   node test/bench/latency.ts [rate=50000] [seconds=30] [rung,rung,...]
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { clientConfig } from '../../pipelines/kafka/connection.ts';
import { produceOrderEvents } from '../../pipelines/loadgen/order-topics.ts';
import { type OrderEvent, orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import {
  createTopics,
  ORDER_SCHEMAS,
  produceSnapshots,
  spawnWorker,
  stack,
  stopWorkers,
  testTopics,
  waitForLog,
  writeFixture,
} from '../integration/harness.ts';
import { TOPOLOGIES } from './ladder-topologies.ts';

const WARMUP_S = 5;
/** Events per order lifecycle in the generated stream, about: sizes the number of orders for a duration. */
const EVENTS_PER_ORDER = 2.85;

interface Result {
  rung: string;
  rate: number;
  seconds: number;
  produced: number;
  rows: number;
  placed: number;
  p50: number;
  p99: number;
  max: number;
  /** Events per second the producer held (sent over the time sending took). */
  achieved: number;
}

function* stamped(events: Iterable<OrderEvent>): Generator<OrderEvent> {
  for (const e of events) yield { ...e, timestamp: Date.now() };
}

async function measure(rung: string, rate: number, seconds: number): Promise<Result> {
  const topics = testTopics('latency');
  await createTopics(topics);
  await produceSnapshots(topics);
  const totals = `${topics.ORDERS_TOPIC}.totals`;
  const env = { ...topics, TOTALS_TOPIC: totals };
  const file = writeFixture(`latency-${rung.replace(/ /g, '-')}`, TOPOLOGIES[rung]!, [...ORDER_SCHEMAS, 'Customer']);
  const w = spawnWorker(file, env, ['--group', `latency-${Date.now()}`], `latency-${rung.replace(/ /g, '-')}`);
  await waitForLog(w, 'partitions assigned');

  const kafka = new KafkaJS.Kafka({
    ...clientConfig(stack().conn.kafka),
    kafkaJS: { logLevel: KafkaJS.logLevel.ERROR },
  } as never);
  // The output topic exists before the reader subscribes: a subscription to a missing topic waits for the next
  // metadata refresh (minutes) after it appears.
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: totals, numPartitions: 3 }] });
  await admin.disconnect();
  const consumer = kafka.consumer({
    'group.id': `latency-reader-${Date.now()}`,
    'auto.offset.reset': 'earliest',
    'isolation.level': 'read_committed',
  } as never);
  await consumer.connect();
  await consumer.subscribe({ topics: [totals] });
  const samples: number[] = [];
  let rows = 0;
  let lastRow = Date.now();
  let measureFrom = Number.POSITIVE_INFINITY;
  void consumer.run({
    eachBatch: async ({ batch }) => {
      const now = Date.now();
      for (const m of batch.messages) {
        const at = (JSON.parse(m.value!.toString()) as { at: number }).at;
        rows++;
        if (at >= measureFrom) samples.push(now - at);
      }
      lastRow = now;
    },
  });
  // The reader is in its group before the first event: its own start is not counted as latency.
  await new Promise((r) => setTimeout(r, 3000));

  const { conn, codec } = stack();
  const events = [...orderLifecycleStream(Math.ceil((rate * seconds) / EVENTS_PER_ORDER), { seed: 11 })].slice(
    0,
    rate * seconds,
  );
  const placed = events.filter((e) => e.eventType === 'OrderPlaced').length;
  measureFrom = Date.now() + WARMUP_S * 1000;
  const sending = performance.now();
  const produced = await produceOrderEvents(conn.kafka, codec, topics, stamped(events), [], { ratePerSecond: rate });
  const achieved = Math.round(produced / ((performance.now() - sending) / 1000));
  // Until every row is read, or nothing came for 10 s.
  while (rows < placed && Date.now() - lastRow < 10_000) await new Promise((r) => setTimeout(r, 100));
  await consumer.disconnect();
  w.child.kill('SIGTERM');
  await w.exited;
  const s = samples.sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? Number.NaN;
  return {
    rung,
    rate,
    seconds,
    produced,
    rows,
    placed,
    p50: q(0.5),
    p99: q(0.99),
    max: s.at(-1) ?? Number.NaN,
    achieved,
  };
}

async function main() {
  const [rateArg, secondsArg, rungArg] = process.argv.slice(2);
  const rate = Number(rateArg ?? 50_000);
  const seconds = Number(secondsArg ?? 30);
  const rungs = rungArg ? rungArg.split(',') : ['L4 at least once', 'L4 exactly once'];
  const date = new Date().toISOString().slice(0, 10);
  const machine = `${cpus().length} cores, ${cpus()[0]?.model ?? '?'}, node ${process.version}`;
  console.log(`${date}; ${machine}; ${rate} events/s for ${seconds} s, the first ${WARMUP_S} s left out`);
  const results: Result[] = [];
  try {
    for (const rung of rungs) {
      const r = await measure(rung, rate, seconds);
      results.push(r);
      console.log(
        `${rung.padEnd(17)} p50 ${r.p50} ms, p99 ${r.p99} ms, max ${r.max} ms; ${r.rows} rows of ${r.placed} placed ` +
          `orders; ${r.achieved} events/s sent`,
      );
    }
  } finally {
    await stopWorkers();
  }
  const out = join('test', 'bench', 'results');
  mkdirSync(out, { recursive: true });
  const json = join(out, `latency-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.json`);
  writeFileSync(json, `${JSON.stringify({ date, machine, rate, seconds, warmup: WARMUP_S, results }, null, 1)}\n`);
  console.log(`every result: ${json}`);
}

await main();
