// Offsets seen from outside a consumer: a topic's end offsets and a group's committed ones, and whether a group
// has caught up with what a topic held at some moment (replays, --until-caught-up, progress displays, tests).
import rdkafka, { KafkaJS } from '@confluentinc/kafka-javascript';
import { PipelinesError } from '../errors.ts';
import { clientConfig, type KafkaConnection, kafkaOf } from './connection.ts';
import { closeEndReader, openEndReader, readBatch } from './end-reader.ts';

export async function withAdmin<T>(conn: KafkaConnection, fn: (admin: KafkaJS.Admin) => Promise<T>): Promise<T> {
  const kafka = kafkaOf(conn);
  const admin = kafka.admin();
  try {
    await admin.connect();
    return await fn(admin);
  } finally {
    // Also when connect failed (broker away): a client left half-open crashed the process later (SIGSEGV).
    await admin.disconnect().catch(() => {});
  }
}

/** The members a consumer group has now (0 when it has none or does not exist). */
export async function groupMembers(conn: KafkaConnection, group: string): Promise<number> {
  const { groups } = await withAdmin(conn, (a) => a.describeGroups([group]));
  return groups[0]?.members.length ?? 0;
}

/**
 * The admin's low and high offsets of each partition of `topic`. The client's KafkaJS layer answers -1 for a
 * partition whose leader could not say (a broker still loading its logs after a restart): taken as they came, a
 * topic of 100k records read as empty, and a worker run `--until-caught-up` stopped before it had read them.
 * Refused here instead, as retriable, until every partition's offsets are known.
 */
export async function topicOffsets(
  admin: KafkaJS.Admin,
  topic: string,
  options?: { isolationLevel: KafkaJS.IsolationLevel },
): Promise<Array<{ partition: number; high: string; low: string }>> {
  const offsets = await admin.fetchTopicOffsets(topic, options as never);
  const unknown = offsets.filter((p) => BigInt(p.high) < 0n || BigInt(p.low) < 0n).map((p) => p.partition);
  if (unknown.length > 0) {
    throw new PipelinesError(
      'KAFKA_OFFSETS_UNKNOWN',
      `${topic}: the offsets of partition ${unknown.join(', ')} are not known yet (its leader is not ready)`,
      { retriable: true },
    );
  }
  return offsets;
}

/** The end (high watermark) of each partition that holds records. */
export async function endOffsets(conn: KafkaConnection, topic: string): Promise<Map<number, bigint>> {
  const offsets = await withAdmin(conn, (a) => topicOffsets(a, topic));
  return new Map(offsets.filter((p) => BigInt(p.high) > BigInt(p.low)).map((p) => [p.partition, BigInt(p.high)]));
}

/** The committed offsets of one consumer group, read by a handle of that group which never joins it. */
export interface GroupOffsets {
  /** The group's committed offset per partition of `topic` (partitions without a commit are absent). */
  committed(topic: string): Promise<Map<number, bigint>>;
  close(): Promise<void>;
}

/**
 * Not through the admin API: librdkafka 2.15's admin OffsetFetch, answered NOT_COORDINATOR (a coordinator still
 * loading on a fresh broker, or moving), re-queries the coordinator of a consumer group the admin handle does not
 * have and crashes the process (SIGSEGV in rd_kafka_cgrp_op; seen in CI). A consumer handle has its group.
 */
export async function openGroupOffsets(
  conn: KafkaConnection,
  group: string,
  timeoutMs = 10_000,
): Promise<GroupOffsets> {
  const consumer = new rdkafka.KafkaConsumer(
    { ...clientConfig(conn), 'group.id': group, 'enable.auto.commit': false } as never,
    {},
  );
  await new Promise<void>((resolve, reject) =>
    consumer.connect({ timeout: timeoutMs }, (err) => (err ? reject(err) : resolve())),
  );
  return {
    async committed(topic) {
      const meta = await new Promise<rdkafka.Metadata>((resolve, reject) =>
        consumer.getMetadata({ topic, timeout: timeoutMs }, (err, m) => (err ? reject(err) : resolve(m))),
      );
      const partitions = meta.topics.find((t) => t.name === topic)?.partitions ?? [];
      if (partitions.length === 0) return new Map();
      const offsets = await new Promise<rdkafka.TopicPartitionOffsetAndMetadata[]>((resolve, reject) =>
        consumer.committed(
          partitions.map((p) => ({ topic, partition: p.id })),
          timeoutMs,
          (err, tps) => (err ? reject(err) : resolve(tps)),
        ),
      );
      return new Map(offsets.filter((p) => p.offset >= 0).map((p) => [p.partition, BigInt(p.offset)]));
    },
    close: () => new Promise<void>((resolve) => consumer.disconnect(() => resolve())),
  };
}

/** The group's committed offset per partition (partitions without a commit are absent). */
export async function committedOffsets(
  conn: KafkaConnection,
  group: string,
  topic: string,
): Promise<Map<number, bigint>> {
  const reader = await openGroupOffsets(conn, group);
  try {
    return await reader.committed(topic);
  } finally {
    await reader.close();
  }
}

/** Per partition of a topic: its low and high watermarks and a group's committed offset (when it has one). */
export interface PartitionPosition {
  partition: number;
  low: bigint;
  high: bigint;
  committed: bigint | undefined;
}

/** A topic's ends and a group's commits, read again and again (lag polling) by clients kept open between reads. */
export interface TopicPositions {
  read(): Promise<PartitionPosition[]>;
  close(): Promise<void>;
}

/**
 * The clients open on the first read and stay open: a failed read keeps them (reconnecting a connected client on
 * every failed poll is what the watermark poller used to do); a failed opening closes what it opened, and the
 * next read opens again.
 */
export function topicPositions(conn: KafkaConnection, topic: string, group: string): TopicPositions {
  let clients: Promise<{ admin: KafkaJS.Admin; offsets: GroupOffsets }> | undefined;
  const open = async () => {
    const kafka = kafkaOf(conn);
    const admin = kafka.admin();
    try {
      await admin.connect();
      return { admin, offsets: await openGroupOffsets(conn, group) };
    } catch (err) {
      await admin.disconnect().catch(() => {});
      throw err;
    }
  };
  return {
    async read() {
      clients ??= open().catch((err) => {
        clients = undefined;
        throw err;
      });
      const c = await clients;
      const [ends, committed] = await Promise.all([topicOffsets(c.admin, topic), c.offsets.committed(topic)]);
      return ends.map((p) => ({
        partition: p.partition,
        low: BigInt(p.low),
        high: BigInt(p.high),
        committed: committed.get(p.partition),
      }));
    },
    async close() {
      const c = await clients?.catch(() => undefined);
      clients = undefined;
      if (c) await Promise.all([c.admin.disconnect().catch(() => {}), c.offsets.close()]);
    },
  };
}

/** Every partition in `ends` is committed up to its end: all of it is processed and durable in every sink. */
export function caughtUp(committed: ReadonlyMap<number, bigint>, ends: ReadonlyMap<number, bigint>): boolean {
  for (const [partition, end] of ends) if ((committed.get(partition) ?? -1n) < end) return false;
  return true;
}

/**
 * Whether a group committed at `committed` has taken every record `topic` holds below `ends`. A topic written in
 * transactions ends with a commit marker, which no commit covers, so what is left is read; and no transaction may
 * be open below `ends` (a killed writer's, until the broker aborts it): a read_committed read stops at it, and would
 * miss the records committed after it.
 */
export async function drainedTo(
  conn: KafkaConnection,
  topic: string,
  committed: ReadonlyMap<number, bigint>,
  ends: ReadonlyMap<number, bigint>,
): Promise<boolean> {
  if (caughtUp(committed, ends)) return true;
  const stable = await withAdmin(conn, (a) =>
    topicOffsets(a, topic, { isolationLevel: KafkaJS.IsolationLevel.READ_COMMITTED }),
  );
  for (const p of stable) if (BigInt(p.high) < (ends.get(p.partition) ?? 0n)) return false;
  const from = new Map([...ends.keys()].map((p) => [p, (committed.get(p) ?? 0n) < 0n ? 0n : (committed.get(p) ?? 0n)]));
  return (await partitionsWithRecords(conn, topic, from, ends)).size === 0;
}

/**
 * The partitions of `from` that still hold a record a read_committed consumer would get, at or after `from` and
 * below `until`. A topic written in transactions ends with a commit marker: a group that has processed every record
 * is committed one short of the end, and only a read tells that what is left is markers (or aborted records).
 */
export async function partitionsWithRecords(
  conn: KafkaConnection,
  topic: string,
  from: ReadonlyMap<number, bigint>,
  until: ReadonlyMap<number, bigint>,
  timeoutMs = 10_000,
): Promise<Set<number>> {
  const open = [...from].filter(([p, offset]) => offset < (until.get(p) ?? 0n));
  const found = new Set<number>();
  if (open.length === 0) return found;
  const consumer = await openEndReader(conn, 'probe', timeoutMs);
  try {
    // A partition is settled at its end, at a record it holds below `until`, or at one past it (a busy topic may
    // never report its end).
    const settled = new Set<number>();
    consumer.on('partition.eof', (e) => settled.add(e.partition));
    consumer.assign(open.map(([partition, offset]) => ({ topic, partition, offset: Number(offset) })));
    const deadline = Date.now() + timeoutMs;
    // One more read once every partition is settled: records fetched before an end event are taken too.
    for (let extra = 0; extra < 2; ) {
      if (settled.size === open.length) extra++;
      if (Date.now() > deadline) {
        throw new PipelinesError('KAFKA_TIMEOUT', `${topic}: not read to its end within ${timeoutMs} ms`, {
          retriable: true,
        });
      }
      const batch = await readBatch(consumer, 1000);
      for (const m of batch) {
        if (BigInt(m.offset) < (until.get(m.partition) ?? 0n)) found.add(m.partition);
        settled.add(m.partition);
      }
    }
    return found;
  } finally {
    await closeEndReader(consumer);
  }
}
