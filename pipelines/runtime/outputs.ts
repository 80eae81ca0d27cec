// What a worker writes to, assembled from its topology: each sink built by its kind through a SinkContext, the one
// producer they share with the dead letters and the state changelog (idempotent, or transactional for
// exactly-once Kafka to Kafka), and the changelog's topic made as the source is.
import { hostname } from 'node:os';
import type { KafkaJS } from '@confluentinc/kafka-javascript';
import type { AvroCodec, RegistryClient } from '../codec/index.ts';
import { topicSpecOf } from '../compile/schema.ts';
import { PipelinesError } from '../errors.ts';
import type { Connections } from '../kafka/connection.ts';
import { groupMembers } from '../kafka/offsets.ts';
import { type KafkaMessage, type MessageSender, sendBatch, senderOf } from '../kafka/produce.ts';
import { applyTopics, type TopicSpec } from '../kafka/topics.ts';
import type { WorkerLog } from '../observe/log.ts';
import type { TopologyMetrics } from '../observe/metrics.ts';
import type { RetryPolicy } from '../retry.ts';
import { KafkaSink } from '../sinks/kafka/sink.ts';
import type { Sink } from '../sinks/sink.ts';
import type { SinkContext } from '../sinks/spec.ts';
import { changelogTopic, changelogTopicSpec, StateChangelog } from '../state/changelog.ts';
import type { TransactionalProducer } from './commit/transactional.ts';
import type { BufferBounds } from './memory.ts';
import type { Plan } from './plan.ts';
import type { WorkerOptions } from './worker.ts';

/** What a worker is assembled from, shared by the steps below. */
/**
 * Rebuild mode (`pipelines replay`): ClickHouse sinks only, writing renamed tables under the insert tokens of the
 * live ones and their own offsets-log key; dead letters go to `deadLetters` (the live run sent them).
 */
export interface Rebuild {
  table(name: string): string;
  logSink(sinkId: string): string;
  deadLetters: KafkaSink;
}

export interface Launch {
  log: WorkerLog;
  rebuild: Rebuild | undefined;
  allowDestructive: boolean;
  tuning: SinkContext['tuning'];
  env: NodeJS.ProcessEnv;
  plan: Plan;
  group: string;
  retry: RetryPolicy;
  /** Start-up's retries end: its deadline passed, or the worker is stopping. */
  gaveUp: () => boolean;
  conns: Connections;
  kafka: KafkaJS.Kafka;
  registry: RegistryClient;
  codec: AvroCodec;
  events: TopologyMetrics | undefined;
  /** Run in reverse order when the worker stops (or its start fails). */
  cleanups: Cleanup[];
  /** Resources lent by the process (LaunchOptions.lent): used as they are, closed by the lender. */
  lent?: ReadonlyMap<string, unknown>;
  /** Resources the sinks opened (SinkContext.shared), one of each for every stage of the worker. */
  shared: Map<string, unknown>;
  /** The buffers' bounds, sized from the memory budget (memory.ts). */
  bounds: BufferBounds;
}

/** What a worker closes when it stops, named for the log when it does not finish. */
export interface Cleanup {
  what: string;
  close(): Promise<unknown>;
}

export interface Outputs {
  sinks: Sink[];
  deadLetters: KafkaSink | undefined;
  changelog: WorkerOptions['changelog'];
  producer: Producer | undefined;
  transactional: boolean;
  readiness: Array<() => Promise<string[]>>;
}

/**
 * The sinks, each built by its kind, on the one producer they share with the dead letters and the changelog. A
 * rebuild writes only the sinks that keep their own positions, from the earliest offsets with empty state: it
 * neither reads nor writes the changelog, and the live run sent the dead letters.
 */
export async function buildOutputs(w: Launch): Promise<Outputs> {
  const { plan } = w;
  const spec = plan.topology.spec;
  const planSinks = w.rebuild ? plan.sinks.filter((s) => s.spec.rebuildable) : plan.sinks;
  const stateful = !w.rebuild && spec.state.changelog && plan.hasState;
  const producers = planSinks.map((s) => s.spec.producer?.(s.config));
  const transactional = producers.includes('transactional');
  if (transactional && !producers.every((p) => p === 'transactional')) {
    throw new PipelinesError(
      'CONFIG',
      `${plan.name}: exactlyOnce needs every sink to be a Kafka sink with exactlyOnce (a transaction cannot ` +
        'span ClickHouse); ClickHouse sinks are exactly-once on their own',
    );
  }
  const needProducer = producers.some(Boolean) || (!w.rebuild && spec.errors.deadLetter !== undefined) || stateful;
  // Checked at launch (staticMembership).
  const instance = w.env.PIPELINES_GROUP_INSTANCE_ID?.trim() || undefined;
  const producer = needProducer
    ? await openProducer(w.kafka, w.bounds.produceKbytes, transactional && `${plan.name}-${w.group}`, instance)
    : undefined;
  if (producer) w.cleanups.push({ what: 'the producer', close: () => producer.current.disconnect() });
  const withProducer = () => {
    if (!producer) throw new PipelinesError('INTERNAL', `${plan.name}: a sink asked for a producer it did not declare`);
    return senderOf(producer.current);
  };
  // The internal topics this stage writes (repartition steps), made before the stage after it reads them.
  for (const s of planSinks) if (s.kind === 'repartition') await internalTopic(w, String(s.config.topic));
  const readiness: Outputs['readiness'] = [];
  const context = sinkContext(w, withProducer, readiness);
  const sinks: Sink[] = [];
  for (const s of planSinks) sinks.push(await s.spec.build(s, context));
  const kafkaSink = (id: string, topic: string) =>
    new KafkaSink({ id, topic, producer: withProducer(), encode: (m) => m as KafkaMessage, retry: w.retry });
  const deadLetters = w.rebuild
    ? w.rebuild.deadLetters
    : spec.errors.deadLetter
      ? kafkaSink('dead-letters', spec.errors.deadLetter)
      : undefined;
  const changelog = stateful ? await stateChangelog(w, kafkaSink) : undefined;
  return { sinks, deadLetters, changelog, producer, transactional, readiness };
}

/** What the worker lends each sink while it is built (see sinks/spec.ts). */
function sinkContext(w: Launch, producer: () => MessageSender, readiness: Outputs['readiness']): SinkContext {
  const { shared } = w;
  return {
    topology: w.plan.name,
    env: w.env,
    log: w.log,
    events: w.events,
    encoder: (subject, schema) => w.codec.encoder(subject, schema),
    producer,
    shared<T>(key: string, open: () => T, close: (resource: T) => Promise<void>): T {
      const lent = w.lent?.get(key);
      if (lent !== undefined) return lent as T;
      if (!shared.has(key)) {
        const resource = open();
        shared.set(key, resource);
        w.cleanups.push({ what: `the shared ${key}`, close: () => close(resource) });
      }
      return shared.get(key) as T;
    },
    readiness: (check) => readiness.push(check),
    ...(w.rebuild ? { rebuild: w.rebuild } : {}),
    allowDestructive: w.allowDestructive,
    tuning: w.tuning,
    retry: w.retry,
    groupMembers: () => groupMembers(w.conns.kafka, w.group),
  };
}

/**
 * The worker's one producer: idempotent, or transactional under `transactionalName`. A fenced transactional
 * producer cannot connect again: `renew` makes a new one (same id, new epoch) and it becomes `current`.
 */
type Producer = Awaited<ReturnType<typeof openProducer>>;

/** The transactional commits' view of the producer: its transactions, whose sends go through sendBatch. */
export function transactionsOn(p: KafkaJS.Producer): TransactionalProducer {
  return {
    async transaction() {
      const tx = await p.transaction();
      return {
        send: (o) => sendBatch(p, o.topic, o.messages),
        sendOffsets: (o) => tx.sendOffsets(o as never),
        commit: () => tx.commit(),
        abort: () => tx.abort(),
      };
    },
    disconnect: () => p.disconnect(),
  };
}

/** Transactional producers opened per name in this process: a second worker of one process needs its own id. */
const opened = new Map<string, number>();

/**
 * One id per worker: a restarted worker takes the id over, and the broker aborts its predecessor's open transaction
 * at once (not after transaction.timeout.ms, with the readers of its topics held back meanwhile). The id is the
 * static member's (PIPELINES_GROUP_INSTANCE_ID) when there is one, else host name and pid (a container restarted in
 * its pod keeps both); two workers of one process (tests) do not fence each other.
 */
function transactionalId(name: string, instance: string | undefined): string {
  const n = (opened.get(name) ?? 0) + 1;
  opened.set(name, n);
  return `pipelines-${name}-${instance ?? `${hostname()}-${process.pid}`}${n > 1 ? `-${n}` : ''}`;
}

async function openProducer(
  kafka: KafkaJS.Kafka,
  queueKbytes: number,
  transactionalName: string | false,
  instance?: string,
) {
  const config = {
    'linger.ms': 5,
    'compression.type': 'lz4',
    // Not bounded by a count (a flush hands the client up to the worker's maxBufferedRows, the previous one maybe
    // still queued) but by bytes, the memory budget's share: a send beyond it waits for deliveries (sendBatch).
    'queue.buffering.max.messages': 1_000_000,
    'queue.buffering.max.kbytes': queueKbytes,
    ...(transactionalName
      ? {
          'transactional.id': transactionalId(transactionalName, instance),
          // A worker killed inside a transaction leaves it open, and read_committed readers of the output
          // wait behind it until the broker aborts it: 10 s (as Kafka Streams) rather than librdkafka's 60 s.
          'transaction.timeout.ms': 10_000,
          'socket.timeout.ms': 10_000, // librdkafka requires it at most the transaction timeout
        }
      : { 'enable.idempotence': true }),
  };
  const connect = async () => {
    const p = kafka.producer(config as never);
    await p.connect();
    return p;
  };
  const handle = {
    current: await connect(),
    async renew() {
      handle.current = await connect();
      return handle.current;
    },
  };
  return handle;
}

/** The state changelog of a stateful topology: its topic made as the source is, its sink and its reader. */
async function stateChangelog(
  w: Launch,
  kafkaSink: (id: string, topic: string) => KafkaSink,
): Promise<NonNullable<WorkerOptions['changelog']>> {
  const { plan, group } = w;
  const state = new StateChangelog(plan, {
    connection: w.conns.kafka,
    topic: changelogTopic(plan.topology, group),
    log: w.log,
  });
  const source = await topicShape(w.kafka, plan.topology.spec.source.topic);
  await state.ensureTopic(asReplicatedAs(source, changelogTopicSpec(plan.topology, source?.partitions ?? 1, group)));
  return {
    sink: kafkaSink('state-changelog', state.topic),
    messages: (partition, last) => state.messages(partition, last),
    restore: (partitions) => state.restore(partitions),
  };
}

/** A repartition step's topic, as its topology declares it (stages.ts), replicated as the source really is. */
async function internalTopic(w: Launch, name: string): Promise<void> {
  const spec = w.plan.topology.spec;
  const declared = spec.topics[name];
  if (!declared) throw new PipelinesError('INTERNAL', `${w.plan.name}: no spec for the internal topic ${name}`);
  const source = await topicShape(w.kafka, spec.source.topic);
  const [change] = await applyTopics(w.conns.kafka, [asReplicatedAs(source, topicSpecOf(name, declared))]);
  if (change?.action === 'conflict') throw new PipelinesError('CONFIG', `repartition topic ${name}: ${change.detail}`);
  if (change?.action !== 'unchanged') w.log.info({ topic: name, ...change }, 'repartition topic');
}

/** As replicated as the source really is (a local single broker), never more than the topology says. */
function asReplicatedAs<T extends TopicSpec>(source: { replicas: number } | undefined, spec: T): T {
  if (source) spec.replicas = Math.min(spec.replicas, source.replicas);
  if (spec.minInSync !== undefined) spec.minInSync = Math.min(spec.minInSync, spec.replicas);
  return spec;
}

/** Partitions and replication of an existing topic (undefined when it does not exist yet). */
async function topicShape(
  kafka: KafkaJS.Kafka,
  topic: string,
): Promise<{ partitions: number; replicas: number } | undefined> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [meta] = (await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => [])) as unknown as Array<{
      partitions: Array<{ replicas: number[] }>;
    }>;
    if (!meta || meta.partitions.length === 0) return undefined;
    return { partitions: meta.partitions.length, replicas: meta.partitions[0]?.replicas.length ?? 1 };
  } finally {
    await admin.disconnect();
  }
}
