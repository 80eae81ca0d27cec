// The worker's source consumer (librdkafka's interface under the worker's batch loop) on the real broker: every
// record handed out once per owner, in offset order per partition, no batch of a partition after its revoke,
// pause and resume, commits confirmed by the broker and read back.
import {
  ASSIGN_PARTITIONS,
  BatchConsumer,
  type FetchedBatch,
  type TopicPartition,
} from '../../pipelines/kafka/batch-consumer.ts';
import { clientConfig } from '../../pipelines/kafka/connection.ts';
import { createTopics, kafkaClient, stack, testTopics } from './harness.ts';

jest.setTimeout(120_000);

const PARTITIONS = 3;
const PER_PARTITION = 4000;

async function producedTopic(name: string): Promise<string> {
  const topics = testTopics(name);
  await createTopics(topics, PARTITIONS);
  const kafka = kafkaClient();
  const producer = kafka.producer();
  await producer.connect();
  for (let p = 0; p < PARTITIONS; p++) {
    for (let i = 0; i < PER_PARTITION; i += 1000) {
      await producer.send({
        topic: topics.ORDERS_TOPIC,
        messages: Array.from({ length: 1000 }, (_, j) => ({
          partition: p,
          key: `k${p}`,
          value: `${p}:${i + j}`,
          // A repeated header key: the worker reads it as a list.
          headers: { trace: 'a', hop: ['x', 'y'] },
        })),
      });
    }
  }
  await producer.disconnect();
  return topics.ORDERS_TOPIC;
}

/** A member of `group` that records what it was handed, what it was assigned, and what broke the rules. */
function member(group: string, topic: string) {
  const owned = new Set<number>();
  const seen: Array<{ partition: number; offset: number; value: string }> = [];
  const violations: string[] = [];
  const last = new Map<number, number>();
  const errors: string[] = [];
  let batches = 0;
  const consumer = new BatchConsumer({
    config: {
      ...clientConfig(stack().conn.kafka),
      'group.id': group,
      'enable.auto.commit': false,
      'auto.offset.reset': 'earliest',
      'js.consumer.max.batch.size': 500,
    },
    onRebalance: async (code, partitions: TopicPartition[]) => {
      if (code === ASSIGN_PARTITIONS) {
        for (const tp of partitions) {
          owned.add(tp.partition);
          last.delete(tp.partition);
        }
        return;
      }
      // A revoke: commit what was handed out, as the worker does, before the partition moves.
      const offsets = partitions.flatMap((tp) => {
        const at = last.get(tp.partition);
        return at === undefined ? [] : [{ topic, partition: tp.partition, offset: String(at + 1) }];
      });
      for (const tp of partitions) owned.delete(tp.partition);
      if (offsets.length > 0) await consumer.commitOffsets(offsets);
    },
    onError: (err) => errors.push(err.message),
  });
  const eachBatch = async ({ batch }: { batch: FetchedBatch }) => {
    batches++;
    if (!owned.has(batch.partition)) violations.push(`batch of partition ${batch.partition} not owned`);
    if (BigInt(batch.highWatermark) < BigInt(batch.messages.at(-1)!.offset) + 1n)
      violations.push(`high watermark ${batch.highWatermark} below offset ${batch.messages.at(-1)!.offset}`);
    for (const m of batch.messages) {
      const offset = Number(m.offset);
      const before = last.get(batch.partition);
      if (before !== undefined && offset !== before + 1) violations.push(`p${batch.partition}: ${before} → ${offset}`);
      last.set(batch.partition, offset);
      seen.push({ partition: batch.partition, offset, value: m.value!.toString() });
      if (String(m.headers?.trace) !== 'a' || !Array.isArray(m.headers?.hop)) violations.push('headers');
    }
    // Some work that waits: batches of several partitions are in hand at once, and a member stays mid-stream
    // long enough for the tests to pause it there.
    await new Promise((r) => setTimeout(r, 20));
  };
  return {
    consumer,
    seen,
    violations,
    errors,
    owned,
    batches: () => batches,
    async start() {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic] });
      await consumer.run({ batchesInHand: 3, eachBatch });
    },
  };
}

async function until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('one member: every record once, in order per partition; commits confirmed and read back', async () => {
  const topic = await producedTopic('batch-one');
  const group = `batch-one-${Date.now()}`;
  const m = member(group, topic);
  await m.start();
  await until('every record', () => m.seen.length >= PARTITIONS * PER_PARTITION);
  expect(m.violations).toEqual([]);
  expect(m.seen).toHaveLength(PARTITIONS * PER_PARTITION);
  expect(new Set(m.seen.map((s) => s.value)).size).toBe(PARTITIONS * PER_PARTITION);
  expect(m.seen.every((s) => s.value === `${s.partition}:${s.offset}`)).toBe(true);
  // Batches are bounded by the configured size: at least 4000 / 500 per partition.
  expect(m.batches()).toBeGreaterThanOrEqual((PARTITIONS * PER_PARTITION) / 500);

  // A partition never committed reads as no offset (negative), not as a number.
  const none = await m.consumer.committed([{ topic, partition: 0 }]);
  expect(BigInt(none[0]!.offset) < 0n).toBe(true);
  const ends = [0, 1, 2].map((partition) => ({ topic, partition, offset: String(PER_PARTITION) }));
  await m.consumer.commitOffsets(ends);
  const committed = await m.consumer.committed(ends.map(({ topic, partition }) => ({ topic, partition })));
  expect(committed.map((c) => c.offset).sort()).toEqual(['4000', '4000', '4000']);
  // Leaving revokes the partitions, and the listener's commit is answered while the consumer polls for it: not
  // after the 15 s a commit may wait unanswered.
  const leaving = Date.now();
  await m.consumer.disconnect();
  expect(Date.now() - leaving).toBeLessThan(5000);
});

test('pause holds the partitions, resume continues where it stopped', async () => {
  const topic = await producedTopic('batch-pause');
  const m = member(`batch-pause-${Date.now()}`, topic);
  await m.start();
  await until('a first record', () => m.seen.length > 0);
  m.consumer.pause([{ topic }]);
  // What was in hand when it paused finishes; then nothing more comes.
  await new Promise((r) => setTimeout(r, 1500));
  const atPause = m.seen.length;
  await new Promise((r) => setTimeout(r, 1500));
  expect(m.seen.length).toBe(atPause);
  expect(atPause).toBeLessThan(PARTITIONS * PER_PARTITION);
  m.consumer.resume([{ topic }]);
  await until('every record', () => m.seen.length >= PARTITIONS * PER_PARTITION);
  expect(m.violations).toEqual([]);
  expect(new Set(m.seen.map((s) => s.value)).size).toBe(PARTITIONS * PER_PARTITION);
  expect(m.seen).toHaveLength(PARTITIONS * PER_PARTITION);
  await m.consumer.disconnect();
});

test('a second member joins and leaves: each partition moves once committed, no record lost or handed out twice', async () => {
  const topic = await producedTopic('batch-rebalance');
  const group = `batch-rebalance-${Date.now()}`;
  const a = member(group, topic);
  await a.start();
  await until('a first record', () => a.seen.length > 0);
  // Slow enough to stay mid-stream while the second member joins: pause, join, resume.
  a.consumer.pause([{ topic }]);
  const b = member(group, topic);
  await b.start();
  await until('a partition for the second member', () => b.owned.size > 0);
  a.consumer.resume([{ topic }]);
  b.consumer.resume([{ topic }]);
  await until('half of the records', () => a.seen.length + b.seen.length >= (PARTITIONS * PER_PARTITION) / 2);
  await b.consumer.disconnect();
  await until(
    'every record',
    () => new Set([...a.seen, ...b.seen].map((s) => s.value)).size >= PARTITIONS * PER_PARTITION,
  );
  await a.consumer.disconnect();

  expect([...a.violations, ...b.violations]).toEqual([]);
  expect([...a.errors, ...b.errors]).toEqual([]);
  expect(b.seen.length).toBeGreaterThan(0);
  // Every commit happened before its partition moved: nothing read twice, nothing skipped.
  const all = [...a.seen, ...b.seen].map((s) => s.value);
  expect(all).toHaveLength(PARTITIONS * PER_PARTITION);
  expect(new Set(all).size).toBe(PARTITIONS * PER_PARTITION);
});

test('pausing one partition holds it alone, and leaves the topic running', async () => {
  const topic = await producedTopic('batch-pause-one');
  const m = member(`batch-pause-one-${Date.now()}`, topic);
  const of = (p: number) => m.seen.filter((s) => s.partition === p).length;
  await m.start();
  await until('a first record of partition 0', () => of(0) > 0);
  m.consumer.pause([{ topic, partitions: [0] }]);
  await new Promise((r) => setTimeout(r, 1500));
  const atPause = of(0);
  await until('partitions 1 and 2 whole', () => of(1) >= PER_PARTITION && of(2) >= PER_PARTITION);
  expect(of(0)).toBe(atPause);
  expect(atPause).toBeLessThan(PER_PARTITION);
  m.consumer.resume([{ topic, partitions: [0] }]);
  await until('every record', () => m.seen.length >= PARTITIONS * PER_PARTITION);
  expect(m.violations).toEqual([]);
  expect(new Set(m.seen.map((s) => s.value)).size).toBe(PARTITIONS * PER_PARTITION);
  await m.consumer.disconnect();
});
