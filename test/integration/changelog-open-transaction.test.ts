// A state restore behind a transaction a killed worker left open, on the real broker. The killed worker's last
// transaction on a changelog partition stays open until the broker aborts it (transaction.timeout.ms); the worker
// after it commits its entries and marker behind that. A restore that took the first end a read_committed reader
// meets (the last stable offset) missed that marker while the group's offsets had moved past it: join-kill lost
// the records waiting in the join's state so. The restore must read on to the end the broker has.
import { spawn } from 'node:child_process';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { encodeValue } from '../../pipelines/codec/decoder.ts';
import { clientConfig } from '../../pipelines/kafka/connection.ts';
import { applyTopics } from '../../pipelines/kafka/topics.ts';
import { MARKER, StateChangelog, type StatefulPlan } from '../../pipelines/state/changelog.ts';
import { stack } from './harness.ts';

jest.setTimeout(120_000);

/** Only what a restore hands back: the entries loaded, the clocks restored. */
class RecordingPlan implements StatefulPlan {
  loaded: Array<[string, unknown]> = [];
  trackChanges(): void {}
  drainChanges(): Array<[string, unknown]> {
    return [];
  }
  loadState(entries: Iterable<[string, unknown]>) {
    this.loaded = [...entries];
    return { loaded: this.loaded.length, ignored: 0 };
  }
  partitionClock() {
    return { time: null };
  }
  restorePartitionClock(): void {}
}

test('a restore reads past a transaction a killed worker left open, to the marker committed after it', async () => {
  const { conn } = stack();
  const topic = `open-txn.${Date.now()}.state`;
  await applyTopics(conn.kafka, [{ name: topic, partitions: 1, replicas: 1, cleanup: 'compact' }]);
  const brokers = conn.kafka.brokers;
  // The killed worker: a transaction with one entry, never ended, its process killed -9.
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { KafkaJS } from '@confluentinc/kafka-javascript';
const k = new KafkaJS.Kafka({ kafkaJS: { brokers: ${JSON.stringify(brokers)}, logLevel: KafkaJS.logLevel.NOTHING } });
const p = k.producer({ 'transactional.id': 'open-txn-killed-${Date.now()}', 'transaction.timeout.ms': 5000, 'socket.timeout.ms': 5000 });
await p.connect();
const tx = await p.transaction();
await tx.send({ topic: '${topic}', messages: [{ key: 'fold|a', value: 'x', partition: 0 }] });
console.log('open');
setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => String(d).includes('open') && resolve());
    child.on('exit', (code) => reject(new Error(`the transaction's process ended first (${code})`)));
  });
  child.kill('SIGKILL');
  // The next worker: its entry and marker, committed after the open transaction began.
  const kafka = new KafkaJS.Kafka({
    ...clientConfig(conn.kafka),
    kafkaJS: { logLevel: KafkaJS.logLevel.NOTHING },
  } as never);
  const next = kafka.producer({ 'transactional.id': `open-txn-next-${Date.now()}` } as never);
  await next.connect();
  const tx = await next.transaction();
  await tx.send({
    topic,
    messages: [
      { key: 'fold|b', value: encodeValue({ n: 1 }), partition: 0 },
      { key: `${MARKER}|0`, value: encodeValue({ offset: '41', time: null }), partition: 0 },
    ],
  });
  await tx.commit();
  await next.disconnect();

  const plan = new RecordingPlan();
  const log = { info() {}, warn() {}, error() {} };
  const started = performance.now();
  const applied = await new StateChangelog(plan, { connection: conn.kafka, topic, log }).restore([0]);
  console.log(`restored after ${Math.round(performance.now() - started)} ms (the open transaction's timeout: 5 s)`);
  expect(applied.get(0)).toBe(41n);
  expect(plan.loaded).toEqual([['fold|b', { n: 1 }]]);
});
