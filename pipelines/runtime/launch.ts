// Assembles a running worker from a topology file: the compiled plan, the Avro codec on the registry, the
// sinks (output schemas registered or checked first, tables created or migrated), lookup tables loaded from
// their compacted topics, metrics and health endpoints. Everything that can be refused is refused before
// the consumer joins the group.
import { hostname } from 'node:os';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { AvroCodec, type Decoder, jsonDecoder, RegistryClient } from '../codec/index.ts';
import { PipelinesError } from '../errors.ts';
import { type ConnectionFlags, clientConfig, connectionsFrom, describeConnection } from '../kafka/connection.ts';
import { type ObserveServer, startObserveServer } from '../observe/http.ts';
import type { WorkerLog } from '../observe/log.ts';
import { createMetrics, type Metrics, type TopologyMetrics } from '../observe/metrics.ts';
import { watchWatermarks } from '../observe/watermarks.ts';
import type { RetryPolicy } from '../retry.ts';
import { type KafkaMessage, KafkaSink } from '../sinks/kafka/sink.ts';
import type { Sink } from '../sinks/sink.ts';
import type { SinkContext } from '../sinks/spec.ts';
import { changelogTopic, changelogTopicSpec, StateChangelog } from '../state/changelog.ts';
import { TableLoader } from '../state/tables.ts';
import { loadPlan } from './load.ts';
import type { Plan } from './plan.ts';
import { kafkaSource } from './source.ts';
import { Worker, type WorkerOptions } from './worker.ts';

export interface LaunchOptions {
  file: string;
  env?: NodeJS.ProcessEnv;
  flags?: ConnectionFlags & { group?: string };
  log: WorkerLog;
  metrics?: Metrics;
  /** Where /metrics, /healthz and /readyz listen; false for none. */
  observe?: { host: string; port: number } | false;
  /** Overrides of the worker's tuning (tests and benchmarks). */
  tuning?: { flushIntervalMs?: number; maxBatchSize?: number; shutdownTimeoutMs?: number; clickhouseMaxRows?: number };
  /** Allows destructive ClickHouse table changes. */
  allowDestructive?: boolean;
  /** Called on every batch besides the metrics (progress displays, benchmarks). */
  onBatch?: (e: { partition: number; records: number; lastOffset: string }) => void;
  /**
   * Rebuild mode (`pipelines replay`): ClickHouse sinks only, writing renamed tables under the insert tokens of
   * the live ones and their own offsets-log key; dead letters go to `deadLetters` (the live run sent them).
   */
  rebuild?: { table: (name: string) => string; logSink: (sinkId: string) => string; deadLetters: KafkaSink };
}

export interface RunningWorker {
  plan: Plan;
  worker: Worker;
  server: ObserveServer | undefined;
  stop(): Promise<void>;
}

export async function launchWorker(o: LaunchOptions): Promise<RunningWorker> {
  const env = o.env ?? process.env;
  const plan = await loadPlan(o.file, { env });
  const spec = plan.topology.spec;
  const group = o.flags?.group ?? spec.source.group;
  const retry = retryPolicy(spec.errors.retry);
  let stopping = false;
  const conns = connectionsFrom(env, o.flags);
  o.log.info({ topology: plan.name, file: o.file, connection: describeConnection(conns) }, 'starting worker');
  const kafka = new KafkaJS.Kafka({
    ...clientConfig(conns.kafka),
    kafkaJS: { logLevel: KafkaJS.logLevel.ERROR },
  } as never);
  // Its requests are retried there, under the topology's policy, and nowhere above (decoding, schema checks).
  const registry = new RegistryClient({
    ...conns.registry,
    retry: {
      ...retry,
      stopped: () => stopping,
      onRetry: (error, attempt) => {
        events?.retry?.({ what: 'registry', attempt, error });
        o.log.warn({ what: 'registry', attempt, err: error.message }, 'registry failed, retrying');
      },
    },
  });
  // The plan's own reader types: records decoded through them are what its expressions read fastest.
  const codec = new AvroCodec({ registry, readers: plan.readerTypes.values() });
  const decoder: Decoder = spec.source.value.format === 'json' ? jsonDecoder : codec;

  // Without the observe server (--no-metrics) there are no metrics at all: no registry, no event callbacks.
  const metrics = o.metrics ?? (o.observe === false ? undefined : createMetrics());
  const events = metrics?.topology(plan.name);
  const cleanups: Array<() => Promise<unknown>> = [];
  const closeAll = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  try {
    // A rebuild writes only the sinks that keep their own positions, from the earliest offsets with empty
    // state: it neither reads nor writes the changelog, and the live run sent the dead letters.
    const planSinks = o.rebuild ? plan.sinks.filter((s) => s.spec.rebuildable) : plan.sinks;
    const stateful = !o.rebuild && spec.state.changelog && plan.hasState;
    const producers = planSinks.map((s) => s.spec.producer?.(s.config));
    const transactional = producers.includes('transactional');
    if (transactional && !producers.every((p) => p === 'transactional')) {
      throw new PipelinesError(
        'CONFIG',
        `${plan.name}: exactlyOnce needs every sink to be a Kafka sink with exactlyOnce (a transaction cannot ` +
          'span ClickHouse); ClickHouse sinks are exactly-once on their own',
      );
    }
    const needProducer = producers.some(Boolean) || (!o.rebuild && spec.errors.deadLetter !== undefined) || stateful;
    const producer = needProducer ? await openProducer(kafka, transactional && `${plan.name}-${group}`) : undefined;
    if (producer) cleanups.push(() => producer.current.disconnect());
    const withProducer = () => {
      if (!producer)
        throw new PipelinesError('INTERNAL', `${plan.name}: a sink asked for a producer it did not declare`);
      return producer.current;
    };

    const readiness: Array<() => Promise<string[]>> = [];
    const shared = new Map<string, unknown>();
    const context: SinkContext = {
      topology: plan.name,
      env,
      log: o.log,
      events,
      encoder: (subject, schema) => codec.encoder(subject, schema),
      producer: withProducer,
      shared<T>(key: string, open: () => T, close: (resource: T) => Promise<void>): T {
        if (!shared.has(key)) {
          const resource = open();
          shared.set(key, resource);
          cleanups.push(() => close(resource));
        }
        return shared.get(key) as T;
      },
      readiness: (check) => readiness.push(check),
      ...(o.rebuild ? { rebuild: o.rebuild } : {}),
      allowDestructive: o.allowDestructive ?? false,
      tuning: o.tuning ?? {},
      retry,
    };
    const sinks: Sink[] = [];
    for (const s of planSinks) sinks.push(await s.spec.build(s, context));
    const kafkaSink = (id: string, topic: string) =>
      new KafkaSink({ id, topic, producer: withProducer(), encode: (m) => m as KafkaMessage, retry });
    const deadLetters = o.rebuild
      ? o.rebuild.deadLetters
      : spec.errors.deadLetter
        ? kafkaSink('dead-letters', spec.errors.deadLetter)
        : undefined;
    const changelog = stateful ? await stateChangelog(kafka, plan, group, conns, o.log, kafkaSink) : undefined;

    // Up before the tables load: /readyz says what it waits for meanwhile.
    let worker: Worker | undefined;
    const server =
      o.observe === false
        ? undefined
        : await startObserveServer({
            metrics: metrics!,
            ...(o.observe ?? { host: '127.0.0.1', port: 19100 }),
            checks: readiness,
            liveness: () => worker?.health() ?? [],
          });
    if (server) {
      cleanups.push(() => server.close());
      o.log.info({ url: server.url }, 'metrics and health endpoints');
    }
    await loadTables(kafka, registry, plan, o.log, events, cleanups);

    worker = new Worker({
      topology: plan.name,
      client: kafkaSource(kafka),
      source: { topic: spec.source.topic, group, start: spec.source.start },
      decoder,
      processor: plan,
      sinks,
      ...(deadLetters ? { deadLetters } : {}),
      ...(changelog ? { changelog } : {}),
      ...(transactional && producer
        ? {
            transactional: {
              producer: producer.current,
              sinks: sinks.filter((s) => s instanceof KafkaSink),
              renew: () => producer.renew(),
            },
          }
        : {}),
      retry,
      ...(o.tuning?.flushIntervalMs ? { flushIntervalMs: o.tuning.flushIntervalMs } : {}),
      ...(o.tuning?.maxBatchSize ? { maxBatchSize: o.tuning.maxBatchSize } : {}),
      ...(o.tuning?.shutdownTimeoutMs ? { shutdownTimeoutMs: o.tuning.shutdownTimeoutMs } : {}),
      log: o.log,
      events: withBatchListener(events, o.onBatch),
    });
    const started = worker;
    await started.start();
    if (events) {
      const watch = watchWatermarks({
        kafka,
        topic: spec.source.topic,
        group,
        start: spec.source.start,
        events,
        log: o.log,
      });
      cleanups.push(() => watch.stop());
    }
    return {
      plan,
      worker: started,
      server,
      async stop() {
        stopping = true;
        await started.stop();
        await closeAll();
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** The topology's `errors.retry` as the one retry policy. */
function retryPolicy(r: Plan['topology']['spec']['errors']['retry']): RetryPolicy {
  return { initialMs: r.backoff.min, maxMs: r.backoff.max, ...(r.max !== undefined ? { maxAttempts: r.max } : {}) };
}

function withBatchListener(events: TopologyMetrics | undefined, onBatch: LaunchOptions['onBatch']) {
  if (!onBatch) return events;
  return {
    ...events,
    batch(e: Parameters<NonNullable<LaunchOptions['onBatch']>>[0] & Parameters<TopologyMetrics['batch']>[0]) {
      events?.batch(e);
      onBatch(e);
    },
  };
}

/**
 * The worker's one producer: idempotent, or transactional under `transactionalName`. A fenced transactional
 * producer cannot connect again: `renew` makes a new one (same id, new epoch) and it becomes `current`.
 */
async function openProducer(kafka: KafkaJS.Kafka, transactionalName: string | false) {
  const config = {
    'linger.ms': 5,
    'compression.type': 'lz4',
    // A flush hands the client everything a sink buffered (up to the worker's maxBufferedRows) while the
    // previous one may still be in its queue when the broker is slow: librdkafka's default of 100,000
    // messages would refuse it (Queue full). Memory stays bounded by the worker's buffers, not by this.
    'queue.buffering.max.messages': 1_000_000,
    ...(transactionalName
      ? {
          'transactional.id': `pipelines-${transactionalName}-${hostname()}-${process.pid}`,
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
  kafka: KafkaJS.Kafka,
  plan: Plan,
  group: string,
  conns: ReturnType<typeof connectionsFrom>,
  log: WorkerLog,
  kafkaSink: (id: string, topic: string) => KafkaSink,
): Promise<NonNullable<WorkerOptions['changelog']>> {
  const state = new StateChangelog(plan, { connection: conns.kafka, topic: changelogTopic(plan.topology, group), log });
  const source = await topicShape(kafka, plan.topology.spec.source.topic);
  const topicSpec = changelogTopicSpec(plan.topology, source?.partitions ?? 1, group);
  // As replicated as the source really is (a local single broker), never more than the topology says.
  if (source) topicSpec.replicas = Math.min(topicSpec.replicas, source.replicas);
  if (topicSpec.minInSync !== undefined) topicSpec.minInSync = Math.min(topicSpec.minInSync, topicSpec.replicas);
  await state.ensureTopic(topicSpec);
  return {
    sink: kafkaSink('state-changelog', state.topic),
    messages: (partition, last) => state.messages(partition, last),
    restore: (partitions) => state.restore(partitions),
  };
}

/** Lookup tables: loaded before the consumer joins, so the first batch already sees them. */
async function loadTables(
  kafka: KafkaJS.Kafka,
  registry: RegistryClient,
  plan: Plan,
  log: WorkerLog,
  events: TopologyMetrics | undefined,
  cleanups: Array<() => Promise<unknown>>,
): Promise<void> {
  const loaders: TableLoader[] = [];
  for (const [name, table] of Object.entries(plan.topology.spec.tables)) {
    const type = plan.tableTypes.get(name);
    const loader = new TableLoader({
      kafka,
      table: name,
      topic: table.topic,
      store: plan.tables,
      decoder: type ? new AvroCodec({ registry, readers: [type], unknownRecord: 'writer' }) : jsonDecoder,
      group: `pipelines-${plan.name}-table-${name}-${hostname()}-${process.pid}-${Date.now()}`,
      log,
      progress: (e) => events?.table?.(e),
    });
    loaders.push(loader);
    cleanups.push(() => loader.stop());
    await loader.start();
  }
  await Promise.all(loaders.map((l) => l.caughtUp));
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
