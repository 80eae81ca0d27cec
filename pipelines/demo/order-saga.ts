// `pipelines saga demo`: the fulfilment saga end to end on the local stack. Topics of the run's own; the
// participants (seeded refusals and lost replies) and the saga as workers (`pipelines run`, child processes); orders
// placed on the saga's inbox; then, once every saga has ended, the outcomes by reason and one compensated saga's
// timeline, as `pipelines saga show` prints it.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { AvroCodec, AvroDecoder, RegistryClient } from '../codec/index.ts';
import { connectionsFrom, kafkaOf } from '../kafka/connection.ts';
import { applyTopics } from '../kafka/topics.ts';
import { orderPlacedStream } from '../loadgen/orders.ts';
import { orderEventEncoder, produce } from '../loadgen/produce.ts';
import { textTable } from '../observe/text-table.ts';

export interface SagaDemoOptions {
  orders: number;
  seed: number;
  failureRate: number;
  lossRate: number;
  timeout: string;
  root: string;
  /** Where the workers' logs go. */
  dir: string;
  out: (text: string) => void;
  /** Gives up when the sagas have not all ended by then (ms). */
  deadlineMs?: number;
}

export interface SagaDemoResult {
  code: number;
  topics: { FULFILMENT_TOPIC: string; COMMANDS_TOPIC: string; OUTCOMES_TOPIC: string; SAGA_STATUS_TOPIC: string };
  /** An order whose saga compensated (for `saga show`), if any. */
  compensated?: string;
}

function worker(root: string, file: string, env: NodeJS.ProcessEnv, log: string): ChildProcess {
  const child = spawn(process.execPath, [join(root, 'pipelines/cli/main.ts'), 'run', file, '--no-metrics'], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const sink = createWriteStream(log);
  child.stdout!.pipe(sink);
  child.stderr!.pipe(sink);
  return child;
}

export async function runSagaDemo(o: SagaDemoOptions): Promise<SagaDemoResult> {
  const run = `saga-demo.${Date.now().toString(36)}`;
  mkdirSync(o.dir, { recursive: true });
  const topics = {
    FULFILMENT_TOPIC: `${run}.fulfilment`,
    COMMANDS_TOPIC: `${run}.commands`,
    OUTCOMES_TOPIC: `${run}.outcomes`,
    SAGA_STATUS_TOPIC: `${run}.status`,
  };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...topics,
    SAGA_TIMEOUT: o.timeout,
    PARTICIPANT_SEED: String(o.seed),
    PARTICIPANT_FAILURE_RATE: String(o.failureRate),
    PARTICIPANT_LOSS_RATE: String(o.lossRate),
    PIPELINES_LOG_LEVEL: 'info',
  };
  const conn = connectionsFrom(env);
  const registry = new RegistryClient(conn.registry);
  await applyTopics(conn.kafka, [
    ...Object.values(topics).map((name) => ({ name, partitions: 3, replicas: 1 })),
    { name: `${run}.fulfilment.dlq`, partitions: 1, replicas: 1 },
    { name: `${run}.commands.dlq`, partitions: 1, replicas: 1 },
  ]);
  const logs = { saga: join(o.dir, 'order-fulfilment.log'), participants: join(o.dir, 'order-participants.log') };
  const workers = [
    worker(
      o.root,
      'topologies/order-participants.yaml',
      { ...env, DLQ_TOPIC: `${run}.commands.dlq` },
      logs.participants,
    ),
    worker(o.root, 'topologies/order-fulfilment.yaml', { ...env, DLQ_TOPIC: `${run}.fulfilment.dlq` }, logs.saga),
  ];
  const stop = () =>
    Promise.all(
      workers.map(
        (w) =>
          new Promise((resolve) => {
            if (w.exitCode !== null) return resolve(0);
            w.once('exit', resolve);
            w.kill('SIGTERM');
          }),
      ),
    );
  try {
    const started = performance.now();
    const encode = await orderEventEncoder(new AvroCodec({ registry }), topics.FULFILMENT_TOPIC);
    const orders = [...orderPlacedStream(o.orders, { seed: o.seed, startTime: Date.now() })];
    await produce(
      conn.kafka,
      topics.FULFILMENT_TOPIC,
      orders.map((e) => ({ key: e.data.orderId, value: encode(e) })),
    );
    o.out(
      `placed ${o.orders} orders on ${topics.FULFILMENT_TOPIC}; the participants refuse ${o.failureRate * 100}% of ` +
        `the commands and lose ${o.lossRate * 100}% of their replies; timeouts ${o.timeout}\n`,
    );
    const outcomes = await readOutcomes(
      conn.kafka,
      registry,
      topics.OUTCOMES_TOPIC,
      o.orders,
      o.deadlineMs ?? 180_000,
      workers,
    );
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    if (outcomes.size < o.orders) {
      o.out(
        `only ${outcomes.size} of ${o.orders} sagas ended in time; the workers' logs: ` +
          `${relative(process.cwd(), logs.saga)}, ${relative(process.cwd(), logs.participants)}\n`,
      );
      return { code: 1, topics };
    }
    const byReason = new Map<string, number>();
    let compensated: string | undefined;
    for (const [id, v] of outcomes) {
      const why = v.eventType === 'OrderConfirmed' ? 'OrderConfirmed' : `${v.eventType}: ${v.data.reason}`;
      byReason.set(why, (byReason.get(why) ?? 0) + 1);
      if (!compensated && v.eventType === 'OrderCancelled' && /payment|shipment/.test(String(v.data.reason)))
        compensated = id;
    }
    o.out(`\nevery saga ended, in ${secs} s from the first order placed:\n`);
    const rows = [...byReason].sort((a, b) => b[1] - a[1]).map(([k, n]) => [k, String(n)]);
    o.out(
      `${textTable(['outcome', 'sagas'], rows)
        .map((l) => `  ${l}`)
        .join('\n')}\n`,
    );
    o.out(
      `\nthe workers' logs: ${relative(process.cwd(), logs.saga)}, ${relative(process.cwd(), logs.participants)}\n`,
    );
    return { code: 0, topics, ...(compensated ? { compensated } : {}) };
  } finally {
    await stop();
  }
}

type Outcome = { eventType: string; data: { reason?: string } };

/** The outcomes topic until `expect` sagas have ended (or the deadline, or a worker exited). */
async function readOutcomes(
  conn: Parameters<typeof kafkaOf>[0],
  registry: RegistryClient,
  topic: string,
  expect: number,
  deadlineMs: number,
  workers: ChildProcess[],
): Promise<Map<string, Outcome>> {
  const decoder = new AvroDecoder({ registry, unknownRecord: 'writer' });
  const consumer = kafkaOf(conn).consumer({
    'group.id': `${topic}-reader`,
    'auto.offset.reset': 'earliest',
    'enable.auto.commit': false,
    'isolation.level': 'read_committed',
  } as never);
  await consumer.connect();
  await consumer.subscribe({ topics: [topic] });
  const out = new Map<string, Outcome>();
  await new Promise<void>((resolve, reject) => {
    const done = () => {
      clearTimeout(deadline);
      clearInterval(watch);
      resolve();
    };
    const deadline = setTimeout(done, deadlineMs);
    const watch = setInterval(() => {
      if (workers.some((w) => w.exitCode !== null)) done();
    }, 500);
    consumer
      .run({
        eachBatch: async ({ batch }) => {
          await decoder.prepare(batch.messages.map((m) => m.value));
          for (const m of batch.messages)
            if (m.key && m.value) out.set(m.key.toString(), decoder.decode(m.value) as Outcome);
          if (out.size >= expect) done();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return out;
}
