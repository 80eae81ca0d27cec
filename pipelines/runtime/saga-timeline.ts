// `pipelines saga show`: one saga instance across its asynchronous hops. Its state comes from the state changelog
// (the newest version of its entry); its timeline from the topics it touches: the inbox (the start event and the
// replies) and every topic its messages go to, each record keyed by the saga id, read committed.
import type { KafkaJS } from '@confluentinc/kafka-javascript';
import { decodeValue } from '../codec/decoder.ts';
import { AvroDecoder, type RegistryClient } from '../codec/index.ts';
import { PipelinesError } from '../errors.ts';
import { type KafkaConnection, kafkaOf } from '../kafka/connection.ts';
import { type Headers, traceIdOf } from '../kafka/headers.ts';
import { readToEnd } from '../kafka/read.ts';
import { changelogTopic, VERSION_HEADER } from '../state/changelog.ts';
import type { SagaConfig } from '../steps/saga/config.ts';
import type { Instance } from '../steps/saga/machine.ts';
import type { Plan } from './plan.ts';

export interface TimelineEntry {
  /** Kafka record timestamp (ms). */
  time: number;
  direction: 'in' | 'out';
  topic: string;
  partition: number;
  offset: string;
  type: string;
  /** The message id (commandId or eventId). */
  id: string | undefined;
  /** The saga step a message belongs to (outgoing messages). */
  step: string | undefined;
  attempt: number | undefined;
  traceId: string | undefined;
}

export interface SagaView {
  step: string;
  instance: Instance | undefined;
  timeline: TimelineEntry[];
}

/** The saga step of a plan (the one named, or the only one). */
export function sagaStepOf(plan: Plan, stepId?: string): string {
  const sagas = plan.steps.filter((s) => s.kind === 'saga').map((s) => s.id);
  if (stepId !== undefined) {
    if (!sagas.includes(stepId))
      throw new PipelinesError(
        'INPUT',
        `no saga step '${stepId}' in ${plan.name} (saga steps: ${sagas.join(', ') || 'none'})`,
      );
    return stepId;
  }
  if (sagas.length !== 1)
    throw new PipelinesError(
      'INPUT',
      `${plan.name} has ${sagas.length} saga steps: name one with --step (${sagas.join(', ')})`,
    );
  return sagas[0]!;
}

export async function sagaTimeline(
  conn: KafkaConnection,
  registry: RegistryClient,
  plan: Plan,
  o: { id: string; step: string; group?: string; idleMs?: number },
): Promise<SagaView> {
  const kafka = kafkaOf(conn);
  const decoder = new AvroDecoder({ registry, unknownRecord: 'writer' });
  const inbox = plan.topics.source;
  // The status records are the instance's state, not hops: left out (the state is read from the changelog).
  const status = (plan.checked.steps.find((s) => s.id === o.step)?.config as SagaConfig | undefined)?.status?.type;
  const outTopics = [
    ...new Set(
      plan.sinks
        .filter((s) => s.from === o.step && s.id !== `${o.step}:${status}`)
        .map((s) => (s.config as { topic: string }).topic),
    ),
  ];
  const group = `pipelines-saga-show-${process.pid}-${Date.now()}`;
  const timeline: TimelineEntry[] = [];
  const read = (topic: string, handle: (p: number, ms: KafkaJS.KafkaMessage[]) => Promise<void>) =>
    readToEnd(conn, kafka, topic, `${group}-${topic}`, false, handle, o.idleMs ?? 1500, { readCommitted: true });

  const changelog = changelogTopic(plan.topology, o.group);
  const entryKey = `${o.step}|${o.id}`;
  let best: { v: number; value: unknown } | undefined;
  await read(changelog, async (_p, messages) => {
    for (const m of messages) {
      if (m.key?.toString() !== entryKey) continue;
      const v = Number((m.headers as Headers | undefined)?.[VERSION_HEADER]?.toString() ?? 0);
      if (!best || v >= best.v) best = { v, value: m.value ? decodeValue(m.value) : null };
    }
  });

  for (const topic of [inbox, ...outTopics.filter((t) => t !== inbox)]) {
    await read(topic, async (partition, messages) => {
      const ours = messages.filter((m) => m.key?.toString() === o.id);
      if (ours.length === 0) return;
      await decoder.prepare(ours.map((m) => m.value));
      for (const m of ours) {
        const headers = m.headers as Headers | undefined;
        let value: Record<string, unknown> = {};
        try {
          value = (m.value ? decoder.decode(m.value) : {}) as Record<string, unknown>;
        } catch {
          value = { eventType: '(not decodable)' };
        }
        if (value.eventType === status) continue;
        const header = (name: string) => headers?.[name]?.toString();
        const out = header('pipelines.saga.messageId') !== undefined;
        timeline.push({
          time: Number(m.timestamp),
          direction: out ? 'out' : 'in',
          topic,
          partition,
          offset: m.offset,
          type: String(value.commandType ?? value.eventType ?? '?'),
          id: (value.commandId ?? value.eventId) as string | undefined,
          step: header('pipelines.saga.step'),
          attempt:
            header('pipelines.saga.attempt') === undefined ? undefined : Number(header('pipelines.saga.attempt')),
          traceId: headers ? traceIdOf(headers) : undefined,
        });
      }
    });
  }
  timeline.sort(
    (a, b) => a.time - b.time || a.topic.localeCompare(b.topic) || Number(BigInt(a.offset) - BigInt(b.offset)),
  );
  const instance = best?.value ? (best.value as Instance) : undefined;
  return { step: o.step, instance, timeline };
}
