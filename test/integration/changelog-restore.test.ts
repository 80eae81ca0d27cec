// State restores on the real broker, in the two ways a killed worker leaves its changelog behind.
//
// A transaction left open: the killed worker's last transaction on a changelog partition stays open until the
// broker aborts it (transaction.timeout.ms); the worker after it commits its entries and marker behind that. A
// restore that took the first end a read_committed reader meets (the last stable offset) missed that marker while
// the group's offsets had moved past it: join-kill lost the records waiting in the join's state so. The restore
// must read on to the end the broker has.
//
// A flush cut short (at least once): entries after the partition's last marker. The restore ignores them; the
// next worker's first marker on the partition must not make them count (windows-changelog, kill -9 twice, found
// windows counted from them).
import { spawn } from 'node:child_process';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { encodeValue } from '../../pipelines/codec/decoder.ts';
import { sendBatch } from '../../pipelines/kafka/produce.ts';
import { applyTopics } from '../../pipelines/kafka/topics.ts';
import { MARKER, StateChangelog, type StatefulPlan, VERSION_HEADER } from '../../pipelines/state/changelog.ts';
import { kafkaClient, stack } from './harness.ts';

jest.setTimeout(120_000);

const log = { info() {}, warn() {}, error() {} };

/** Only what a restore hands back (the entries loaded, the clocks restored), and the changes it is given. */
class RecordingPlan implements StatefulPlan {
  loaded: Array<[string, unknown]> = [];
  changes: Array<[string, unknown]> = [];
  trackChanges(): void {}
  drainChanges(): Array<[string, unknown]> {
    const out = this.changes;
    this.changes = [];
    return out;
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
  const kafka = kafkaClient(KafkaJS.logLevel.NOTHING);
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
  const started = performance.now();
  const applied = await new StateChangelog(plan, { connection: conn.kafka, topic, log }).restore([0]);
  console.log(`restored after ${Math.round(performance.now() - started)} ms (the open transaction's timeout: 5 s)`);
  expect(applied.get(0)).toBe(41n);
  expect(plan.loaded).toEqual([['fold|b', { n: 1 }]]);
});

test("a flush cut short stays ignored after the next worker's marker; its keys keep their committed entries", async () => {
  const { conn } = stack();
  const topic = `cut-short.${Date.now()}.state`;
  await applyTopics(conn.kafka, [{ name: topic, partitions: 1, replicas: 1, cleanup: 'compact' }]);
  const kafka = kafkaClient(KafkaJS.logLevel.NOTHING);
  const producer = kafka.producer({ 'enable.idempotence': true } as never);
  await producer.connect();
  try {
    const entry = (key: string, value: unknown, v: number) => ({
      key,
      value: encodeValue(value),
      headers: { [VERSION_HEADER]: String(v) },
      partition: 0,
    });
    // The killed worker: one batch ended by its marker, then a flush cut short before its marker.
    await sendBatch(producer, topic, [
      entry('fold|a', { n: 1 }, 100),
      entry(`${MARKER}|0`, { offset: '10', time: null }, 100),
      entry('fold|a', { n: 99 }, 200),
      entry('fold|b', { n: 7 }, 200),
    ]);

    // The next worker restores (the cut-short entries ignored), then writes its first batch's state.
    const next = new RecordingPlan();
    const state = new StateChangelog(next, { connection: conn.kafka, topic, log });
    expect((await state.restore([0])).get(0)).toBe(10n);
    expect(next.loaded).toEqual([['fold|a', { n: 1 }]]);
    next.changes = [['fold|c', { n: 3 }]];
    await sendBatch(producer, topic, state.messages(0, '20'));

    // The worker after it: the state as the two batches left it, nothing of the cut-short flush.
    const last = new RecordingPlan();
    const applied = await new StateChangelog(last, { connection: conn.kafka, topic, log }).restore([0]);
    expect(applied.get(0)).toBe(20n);
    expect(new Map(last.loaded)).toEqual(
      new Map<string, unknown>([
        ['fold|a', { n: 1 }],
        ['fold|c', { n: 3 }],
      ]),
    );
  } finally {
    await producer.disconnect();
  }
});
