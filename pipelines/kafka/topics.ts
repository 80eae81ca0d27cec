// Creates or updates the topics a topology declares, through the admin API: partitions, replication,
// retention, cleanup policy, min in-sync replicas. Partitions only grow (Kafka cannot shrink them).
import rdkafka from '@confluentinc/kafka-javascript';
import { clientConfig, type KafkaConnection, kafkaOf } from './connection.ts';

export interface TopicSpec {
  name: string;
  partitions: number;
  replicas: number;
  retentionMs?: number;
  cleanup?: 'delete' | 'compact' | 'compact,delete';
  minInSync?: number;
}

export interface TopicChange {
  topic: string;
  action: 'create' | 'add-partitions' | 'unchanged' | 'conflict';
  detail: string;
}

export interface ApplyOptions {
  /** Caps the replication factor (and min in-sync replicas) to what a small cluster has, e.g. 1 locally. */
  maxReplicas?: number;
  dryRun?: boolean;
  /** Topics that exist are left as they are (the load generator writes to whatever the user made). */
  onlyCreate?: boolean;
}

function configEntries(t: TopicSpec, replicas: number): Array<{ name: string; value: string }> {
  const out: Array<{ name: string; value: string }> = [];
  if (t.retentionMs !== undefined) out.push({ name: 'retention.ms', value: String(t.retentionMs) });
  if (t.cleanup) out.push({ name: 'cleanup.policy', value: t.cleanup });
  if (t.minInSync !== undefined)
    out.push({ name: 'min.insync.replicas', value: String(Math.min(t.minInSync, replicas)) });
  return out;
}

/** Plans and (unless dry-run) applies the topic specs; returns one line per topic. */
export async function applyTopics(
  conn: KafkaConnection,
  specs: TopicSpec[],
  options: ApplyOptions = {},
): Promise<TopicChange[]> {
  const kafka = kafkaOf(conn);
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const changes: TopicChange[] = [];
    const toCreate: TopicSpec[] = [];
    for (const spec of specs) {
      const replicas = Math.min(spec.replicas, options.maxReplicas ?? spec.replicas);
      if (!existing.has(spec.name)) {
        toCreate.push(spec);
        const capped = replicas < spec.replicas ? ` (capped from ${spec.replicas} by --max-replicas)` : '';
        changes.push({
          topic: spec.name,
          action: 'create',
          detail: `${spec.partitions} partitions, ${replicas} replicas${capped}, ${configEntries(spec, replicas)
            .map((c) => `${c.name}=${c.value}`)
            .join(', ')}`,
        });
        continue;
      }
      if (options.onlyCreate) {
        changes.push({ topic: spec.name, action: 'unchanged', detail: 'exists' });
        continue;
      }
      const [meta] = (await admin.fetchTopicMetadata({ topics: [spec.name] })) as unknown as Array<{
        partitions: Array<{ replicas: number[] }>;
      }>;
      const have = meta?.partitions.length ?? 0;
      const haveReplicas = meta?.partitions[0]?.replicas.length ?? 0;
      if (have > spec.partitions) {
        changes.push({
          topic: spec.name,
          action: 'conflict',
          detail: `has ${have} partitions, the topology says ${spec.partitions}: Kafka cannot remove partitions`,
        });
      } else if (have < spec.partitions) {
        changes.push({ topic: spec.name, action: 'add-partitions', detail: `${have} → ${spec.partitions} partitions` });
        if (!options.dryRun) await createPartitions(conn, spec.name, spec.partitions);
      } else {
        const note =
          haveReplicas !== replicas ? ` (has ${haveReplicas} replicas, wanted ${replicas}: not changed)` : '';
        changes.push({ topic: spec.name, action: 'unchanged', detail: `${have} partitions${note}` });
      }
    }
    if (!options.dryRun && toCreate.length > 0) {
      await admin.createTopics({
        topics: toCreate.map((t) => {
          const replicas = Math.min(t.replicas, options.maxReplicas ?? t.replicas);
          return {
            topic: t.name,
            numPartitions: t.partitions,
            replicationFactor: replicas,
            configEntries: configEntries(t, replicas),
          };
        }),
      });
    }
    return changes;
  } finally {
    await admin.disconnect();
  }
}

/** The KafkaJS-style admin has no createPartitions: the librdkafka admin client does. */
function createPartitions(conn: KafkaConnection, topic: string, total: number): Promise<void> {
  const client = rdkafka.AdminClient.create(clientConfig(conn) as never);
  return new Promise<void>((resolve, reject) => {
    client.createPartitions(topic, total, 30_000, (err) => {
      client.disconnect();
      if (err) reject(err);
      else resolve();
    });
  });
}
