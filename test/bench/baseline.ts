// What a bench run measures itself against: a counter from the first record to the last, and a bare consumer of
// the same client that only counts (the ceiling of any worker on that topic, in the same run).
import rdkafka, { KafkaJS } from '@confluentinc/kafka-javascript';
import { clientConfig, connectionsFrom } from '../../pipelines/kafka/connection.ts';
import { launchWorker } from '../../pipelines/runtime/launch.ts';

/**
 * Counts records as batches end; resolves when `total` have been seen, with the records after the first batch and
 * the time they took. The rate runs from the end of the first batch
 * to the end of the last, over the records after the first batch: clients hand out batches of very different sizes
 * (kafkajs a megabyte per partition), and a clock started after a batch must not count it.
 */
export function counter(total: number, onFirst?: () => void) {
  let seen = 0;
  let first = 0;
  let afterFirst = 0;
  let resolve!: (r: { records: number; ms: number }) => void;
  const done = new Promise<{ records: number; ms: number }>((r) => {
    resolve = r;
  });
  return {
    done,
    add(n: number) {
      if (seen === 0) {
        onFirst?.();
        first = performance.now();
      } else afterFirst += n;
      seen += n;
      if (seen >= total) resolve({ records: afterFirst, ms: performance.now() - first });
    },
  };
}

/** A consumer with the worker's batch and prefetch settings that counts `total` records of `topic`. */
export async function bareConsumer(
  topic: string,
  total: number,
  onFirst?: () => void,
): Promise<{ records: number; ms: number }> {
  const c = counter(total, onFirst);
  const conn = connectionsFrom(process.env).kafka;
  const kafka = new KafkaJS.Kafka({ ...clientConfig(conn), kafkaJS: { logLevel: KafkaJS.logLevel.ERROR } } as never);
  const consumer = kafka.consumer({
    'group.id': `bench-bare-${Date.now()}`,
    'auto.offset.reset': 'earliest',
    'enable.auto.commit': false,
    'js.consumer.max.batch.size': 5000,
    'queued.max.messages.kbytes': 16384,
  } as never);
  await consumer.connect();
  await consumer.subscribe({ topics: [topic] });
  void consumer.run({ eachBatch: async ({ batch }) => c.add(batch.messages.length) });
  const r = await c.done;
  await consumer.disconnect();
  return r;
}

/**
 * The same client's lower-level interface (librdkafka's consume loop, no KafkaJS layer), counting `total` records:
 * what a source built on it could reach.
 */
export async function bareLowLevelConsumer(
  topic: string,
  total: number,
  onFirst?: () => void,
): Promise<{ records: number; ms: number }> {
  const c = counter(total, onFirst);
  const conn = connectionsFrom(process.env).kafka;
  const consumer = new rdkafka.KafkaConsumer(
    {
      ...clientConfig(conn),
      'group.id': `bench-bare-low-${Date.now()}`,
      'enable.auto.commit': false,
      'queued.max.messages.kbytes': 16384,
    } as never,
    { 'auto.offset.reset': 'earliest' },
  );
  await new Promise<void>((resolve, reject) => consumer.connect({}, (err) => (err ? reject(err) : resolve())));
  consumer.subscribe([topic]);
  consumer.setDefaultConsumeTimeout(100);
  let running = true;
  void c.done.then(() => {
    running = false;
  });
  while (running) {
    const batch = await new Promise<rdkafka.Message[]>((resolve, reject) =>
      consumer.consume(5000, (err, messages) => (err ? reject(err) : resolve(messages))),
    );
    if (batch.length > 0) c.add(batch.length);
  }
  const r = await c.done;
  await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  return r;
}

const quiet = { info() {}, warn() {}, error: (o: object, m: string) => console.error(m, o) };

/** The topology `file` as a worker in this process (a fresh group, `env` set), until it has read `total` records. */
export async function workerRun(
  file: string,
  group: string,
  env: Record<string, string>,
  total: number,
  onFirst?: () => void,
) {
  const c = counter(total, onFirst);
  Object.assign(process.env, env);
  const running = await launchWorker({
    file,
    flags: { group: `${group}-${Date.now()}` },
    log: quiet,
    observe: false,
    onBatch: (e) => c.add(e.records),
  });
  const r = await c.done;
  await running.stop();
  return r;
}
