// The dead-letter tools: read a dead-letter topic (decoded, with provenance), and redrive its records
// to the topic they came from, with their original key and headers, exactly once per dead letter
// (the redrive group's offsets are committed after the records are produced).
import { AvroDecoder, type RegistryClient } from '../codec/index.ts';
import { PipelinesError } from '../errors.ts';
import { type KafkaConnection, kafkaOf } from '../kafka/connection.ts';
import { type DeadLetterProvenance, type Headers, originalHeaders, readDeadLetter } from '../kafka/headers.ts';
import { type KafkaMessage, sendBatch } from '../kafka/produce.ts';
import { readToEnd } from '../kafka/read.ts';

export interface DeadLetterView {
  partition: number;
  offset: string;
  key: string | null;
  provenance: DeadLetterProvenance | undefined;
  /** The value decoded with its writer schema, or why it could not be. */
  value: unknown;
  decodeError?: string;
}

export async function inspectDeadLetters(
  conn: KafkaConnection,
  registry: RegistryClient,
  topic: string,
  options: { limit?: number; idleMs?: number } = {},
): Promise<DeadLetterView[]> {
  const kafka = kafkaOf(conn);
  const decoder = new AvroDecoder({ registry, unknownRecord: 'writer' });
  const out: DeadLetterView[] = [];
  // A throwaway group: inspecting moves nobody's offsets.
  const group = `pipelines-dlq-inspect-${process.pid}-${Date.now()}`;
  await readToEnd(
    conn,
    kafka,
    topic,
    group,
    false,
    async (partition, messages) => {
      await decoder.prepare(messages.map((m) => m.value)).catch(() => {});
      for (const m of messages) {
        if (options.limit !== undefined && out.length >= options.limit) return;
        const view: DeadLetterView = {
          partition,
          offset: m.offset,
          key: m.key?.toString() ?? null,
          provenance: readDeadLetter(m.headers as Headers),
          value: null,
        };
        try {
          view.value = m.value ? decoder.decode(m.value) : null;
        } catch (err) {
          view.decodeError = (err as Error).message;
          view.value = m.value ? m.value.toString('base64') : null;
        }
        out.push(view);
      }
    },
    options.idleMs ?? 3000,
  );
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteGroups([group]).catch(() => {});
  await admin.disconnect();
  return out.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
}

export interface RedriveResult {
  redriven: number;
  byTopic: Record<string, number>;
  skipped: number;
  /** Dead letters that went without their value (too large): not redriven, counted in `skipped` too. */
  withoutValue: number;
}

/**
 * Sends each dead letter back to its source topic (from its provenance), original key, value and headers,
 * and commits the redrive group's offsets after each produced batch: a second redrive sends only new ones.
 */
export async function redriveDeadLetters(
  conn: KafkaConnection,
  topic: string,
  options: { to?: string; filterStep?: string; idleMs?: number } = {},
): Promise<RedriveResult> {
  const kafka = kafkaOf(conn);
  const producer = kafka.producer({ 'enable.idempotence': true, 'linger.ms': 5 } as never);
  await producer.connect();
  const admin = kafka.admin();
  await admin.connect();
  const result: RedriveResult = { redriven: 0, byTopic: {}, skipped: 0, withoutValue: 0 };
  // A target that is gone is not sent to: a broker that creates topics on first write would make an empty one
  // of its default shape, one that does not would fail each send after its timeout.
  let existing: Set<string> | undefined;
  const exists = async (target: string) => {
    if (!existing?.has(target)) existing = new Set(await admin.listTopics());
    return existing.has(target);
  };
  try {
    await readToEnd(
      conn,
      kafka,
      topic,
      `pipelines-dlq-redrive-${topic}`,
      true,
      async (partition, messages) => {
        const byTarget = new Map<string, KafkaMessage[]>();
        for (const m of messages) {
          const p = readDeadLetter(m.headers as Headers);
          const target = options.to ?? p?.topic;
          if (!p || !target || (options.filterStep && p.step !== options.filterStep)) {
            result.skipped++;
            continue;
          }
          // Its value is not here to send back: the original is at p.topic/p.partition@p.offset, if still kept.
          if (p.valueOmitted !== undefined) {
            result.skipped++;
            result.withoutValue++;
            continue;
          }
          const list = byTarget.get(target) ?? [];
          list.push({ key: m.key ?? null, value: m.value ?? null, headers: originalHeaders(m.headers as Headers) });
          byTarget.set(target, list);
        }
        // Every target of the batch is checked before any is sent: the batch is committed whole or not at all.
        for (const target of byTarget.keys()) {
          if (await exists(target)) continue;
          throw new PipelinesError(
            'DLQ_TARGET_MISSING',
            `dead letters in ${topic} (partition ${partition}, from offset ${messages[0]!.offset}) go back to ` +
              `${target}, which does not exist: none of them was sent, and they stay in ${topic} (${result.redriven} ` +
              `sent before). Create ${target} again (pipelines topics apply), or send them elsewhere with --to <topic>.`,
          );
        }
        for (const [target, list] of byTarget) {
          await sendBatch(producer, target, list);
          result.byTopic[target] = (result.byTopic[target] ?? 0) + list.length;
          result.redriven += list.length;
        }
      },
      options.idleMs ?? 3000,
    );
  } finally {
    await Promise.all([producer.disconnect(), admin.disconnect()]);
  }
  return result;
}
