// Offsets seen from outside a consumer: a topic's end offsets and a group's committed ones, and whether a group
// has caught up with what a topic held at some moment (replays, --until-caught-up, progress displays, tests).
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { clientConfig, type KafkaConnection } from './connection.ts';

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
