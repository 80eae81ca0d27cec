// Offsets seen from outside a consumer: a topic's end offsets and a group's committed ones, and whether a group
// has caught up with what a topic held at some moment (replays, --until-caught-up, progress displays, tests).
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { PipelinesError } from '../errors.ts';
import { clientConfig, type KafkaConnection } from './connection.ts';
import { closeEndReader, openEndReader, readBatch } from './end-reader.ts';

export async function withAdmin<T>(conn: KafkaConnection, fn: (admin: KafkaJS.Admin) => Promise<T>): Promise<T> {
  const kafka = new KafkaJS.Kafka({ ...clientConfig(conn), kafkaJS: { logLevel: KafkaJS.logLevel.ERROR } } as never);
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

/** The end (high watermark) of each partition that holds records. */
export async function endOffsets(conn: KafkaConnection, topic: string): Promise<Map<number, bigint>> {
  const offsets = await withAdmin(conn, (a) => a.fetchTopicOffsets(topic));
  return new Map(offsets.filter((p) => BigInt(p.high) > BigInt(p.low)).map((p) => [p.partition, BigInt(p.high)]));
}

/** The group's committed offset per partition (partitions without a commit are absent). */
export async function committedOffsets(
  conn: KafkaConnection,
  group: string,
  topic: string,
): Promise<Map<number, bigint>> {
  const [c] = await withAdmin(conn, (a) => a.fetchOffsets({ groupId: group, topics: [topic] }));
  return new Map(
    (c?.partitions ?? []).filter((p) => BigInt(p.offset) >= 0n).map((p) => [p.partition, BigInt(p.offset)]),
  );
}

/** Every partition in `ends` is committed up to its end: all of it is processed and durable in every sink. */
export function caughtUp(committed: ReadonlyMap<number, bigint>, ends: ReadonlyMap<number, bigint>): boolean {
  for (const [partition, end] of ends) if ((committed.get(partition) ?? -1n) < end) return false;
  return true;
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
