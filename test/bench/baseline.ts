// What a bench run measures itself against: a counter from the first record to the last, and a bare consumer of
// the same client that only counts (the ceiling of any worker on that topic, in the same run).
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { clientConfig, connectionsFrom } from '../../pipelines/kafka/connection.ts';
import { launchWorker } from '../../pipelines/runtime/launch.ts';

/** Counts records from the first batch to the last; resolves when `total` have been seen. */
export function counter(total: number) {
  let seen = 0;
  let first = 0;
  let resolve!: (r: { records: number; ms: number }) => void;
  const done = new Promise<{ records: number; ms: number }>((r) => {
    resolve = r;
  });
  return {
    done,
    add(n: number) {
      if (seen === 0) first = performance.now();
      seen += n;
      if (seen >= total) resolve({ records: seen, ms: performance.now() - first });
    },
  };
}

/** A consumer with the worker's batch and prefetch settings that counts `total` records of `topic`. */
export async function bareConsumer(topic: string, total: number): Promise<{ records: number; ms: number }> {
  const c = counter(total);
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

const quiet = { info() {}, warn() {}, error: (o: object, m: string) => console.error(m, o) };

/** The topology `file` as a worker in this process (a fresh group, `env` set), until it has read `total` records. */
export async function workerRun(file: string, group: string, env: Record<string, string>, total: number) {
  const c = counter(total);
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
