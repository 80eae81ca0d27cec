// Assembles a running worker from a topology file: the compiled plan, the Avro codec on the registry, the
// sinks (output schemas registered or checked first, tables created or migrated), lookup tables loaded from
// their compacted topics, metrics and health endpoints. Everything that can be refused is refused before
// the consumer joins the group.
import { hostname } from 'node:os';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { AvroCodec, type Decoder, jsonDecoder, RegistryClient, subjectName } from '../codec/index.ts';
import { type ConnectionFlags, clientConfig, connectionsFrom, describeConnection } from '../kafka/connection.ts';
import { childTraceHeaders, type Headers } from '../kafka/headers.ts';
import { instrumentClickHouse } from '../observe/clickhouse.ts';
import { type ObserveServer, startObserveServer } from '../observe/http.ts';
import type { WorkerLog } from '../observe/log.ts';
import { createMetrics, type Metrics } from '../observe/metrics.ts';
import { watchWatermarks } from '../observe/watermarks.ts';
import {
  type ClickHouse,
  clickHouseConfigFromEnv,
  clickHouseFlushFromEnv,
  openClickHouse,
} from '../sinks/clickhouse/connection.ts';
import { ClickHouseSink } from '../sinks/clickhouse/sink.ts';
import { type ClickHouseSinkConfig, tableSpecFor } from '../sinks/clickhouse/table.ts';
import { KafkaSink } from '../sinks/kafka.ts';
import type { Sink } from '../sinks/sink.ts';
import { changelogTopic, changelogTopicSpec, StateChangelog } from '../state/changelog.ts';
import { TableLoader } from '../state/tables.ts';
import { loadPlan } from '../topology/load.ts';
import type { Plan } from '../topology/plan.ts';
import type { Scope } from '../topology/types.ts';
import type { TransactionalProducer } from './commit/transactional.ts';
import { defaultRetry } from './retry.ts';
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
  rebuild?: { table: (name: string) => string; logSink: (sinkId: string) => string; deadLetters: Sink };
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
  const conns = connectionsFrom(env, o.flags);
  o.log.info({ topology: plan.name, file: o.file, connection: describeConnection(conns) }, 'starting worker');
  const kafka = new KafkaJS.Kafka({
    ...clientConfig(conns.kafka),
    kafkaJS: { logLevel: KafkaJS.logLevel.ERROR },
  } as never);
  const registry = new RegistryClient(conns.registry);
  // The plan's own reader types: records decoded through them are what its expressions read fastest.
  const codec = new AvroCodec({ registry, readers: plan.readerTypes.values() });
  const decoder: Decoder = spec.source.value.format === 'json' ? jsonDecoder : codec;

  // Without the observe server (--no-metrics) there are no metrics at all: no registry, no event callbacks.
  const metrics = o.metrics ?? (o.observe === false ? undefined : createMetrics());
  const events = metrics?.topology(plan.name);
  const chTables = new Map<string, string>();
  const cleanups: Array<() => Promise<unknown>> = [];
  const closeAll = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  try {
    const kafkaSinks: KafkaSink[] = [];
    const sinks: Sink[] = [];
    let producer: KafkaJS.Producer | undefined;
    let renewProducer: (() => Promise<KafkaJS.Producer>) | undefined;
    const planSinks = o.rebuild ? plan.sinks.filter((s) => s.kind === 'clickhouse') : plan.sinks;
    const transactional = planSinks.some((s) => s.kind === 'kafka' && s.writer.exactlyOnce === true);
    if (transactional && planSinks.some((s) => s.kind !== 'kafka')) {
      throw userError(
        `${plan.name}: exactlyOnce needs every sink to be Kafka (a transaction cannot span ClickHouse); ` +
          'ClickHouse sinks are exactly-once on their own',
      );
    }
    // A rebuild starts from the earliest offsets with empty state: it neither reads nor writes the changelog.
    const stateful = !o.rebuild && spec.state.changelog && plan.hasState;
    const needProducer =
      planSinks.some((s) => s.kind === 'kafka') || (!o.rebuild && spec.errors.deadLetter !== undefined) || stateful;
    if (needProducer) {
      const config = {
        'linger.ms': 5,
        'compression.type': 'lz4',
        // A flush hands the client everything a sink buffered (up to the worker's maxBufferedRows) while the
        // previous one may still be in its queue when the broker is slow: librdkafka's default of 100,000
        // messages would refuse it (Queue full). Memory stays bounded by the worker's buffers, not by this.
        'queue.buffering.max.messages': 1_000_000,
        ...(transactional
          ? {
              'transactional.id': `pipelines-${plan.name}-${o.flags?.group ?? spec.source.group}-${hostname()}-${process.pid}`,
              // A worker killed inside a transaction leaves it open, and read_committed readers of the output
              // wait behind it until the broker aborts it: 10 s (as Kafka Streams) rather than librdkafka's 60 s.
              'transaction.timeout.ms': 10_000,
              'socket.timeout.ms': 10_000, // librdkafka requires it at most the transaction timeout
            }
          : { 'enable.idempotence': true }),
      };
      producer = kafka.producer(config as never);
      await producer.connect();
      // A fenced transactional producer cannot connect again: the worker asks for a new one (same id, new epoch).
      renewProducer = async () => {
        const next = kafka.producer(config as never);
        await next.connect();
        producer = next;
        return next;
      };
      cleanups.push(() => producer!.disconnect());
    }
    let ch: ClickHouse | undefined;
    for (const s of planSinks) {
      if (s.kind === 'kafka') {
        const w = s.writer as unknown as {
          topic: string;
          format: 'avro' | 'json';
          subjects: 'TopicName' | 'RecordName' | 'TopicRecordName';
          valueType?: { name?: string };
          valueSchema?: object;
        };
        let encodeValue: (v: unknown) => Buffer;
        if (w.format === 'avro') {
          if (!w.valueSchema) throw userError(`sink ${s.id}: an Avro value needs value.schema`);
          const subject = subjectName(w.subjects, { topic: w.topic, recordName: w.valueType?.name, kind: 'value' });
          // Registers the schema or checks it against the subject's compatibility mode: refuses to start if not.
          const encoder = await codec.encoder(subject, w.valueSchema);
          encodeValue = (v) => encoder.encode(v);
        } else {
          encodeValue = (v) => Buffer.from(JSON.stringify(v));
        }
        const sink = new KafkaSink({
          id: s.id,
          topic: w.topic,
          producer: producer!,
          encode: (row) => {
            const r = row as { key: unknown; value: unknown; headers?: Headers };
            return {
              key: r.key === null || r.key === undefined ? null : String(r.key),
              value: encodeValue(r.value),
              headers: childTraceHeaders(r.headers),
            };
          },
        });
        kafkaSinks.push(sink);
        sinks.push(sink);
      } else if (s.kind === 'clickhouse') {
        if (!ch) {
          const opened = openClickHouse(clickHouseConfigFromEnv(env));
          ch = events ? instrumentClickHouse(opened, events, chTables) : opened;
          cleanups.push(() => opened.close());
          o.log.info({ clickhouse: opened.description }, 'ClickHouse');
          if (opened.droppedDedupRecords?.length) {
            o.log.warn(
              { records: opened.droppedDedupRecords },
              'ClickHouse: dropped deduplication records of inserts a crash cut short (their replay is written)',
            );
          }
        }
        const scope = plan.checked.sinks.find((c) => c.id === s.id)?.scope as Scope;
        const live = tableSpecFor(s.config as unknown as ClickHouseSinkConfig, scope);
        const table = o.rebuild ? { ...live, table: o.rebuild.table(live.table) } : live;
        chTables.set(table.table, s.id);
        const sink = new ClickHouseSink({
          id: s.id,
          topology: plan.name,
          ch,
          table,
          ...(o.rebuild ? { tokenName: live.table, logSink: o.rebuild.logSink(s.id) } : {}),
          allowDestructive: o.allowDestructive ?? false,
          writer: {
            ...clickHouseFlushFromEnv(env),
            ...(o.tuning?.clickhouseMaxRows ? { maxRows: o.tuning.clickhouseMaxRows } : {}),
            retry: {
              maxAttempts: Number.POSITIVE_INFINITY,
              onRetry: (error: Error, attempt: number) => events?.retry?.({ what: `sink ${s.id}`, attempt, error }),
            },
          },
        });
        await sink.prepare();
        sinks.push(sink);
      } else {
        throw userError(`sink ${s.id}: kind '${s.kind}' has no runtime`);
      }
    }
    const deadLetters = o.rebuild
      ? (o.rebuild.deadLetters as KafkaSink)
      : spec.errors.deadLetter
        ? new KafkaSink({
            id: 'dead-letters',
            topic: spec.errors.deadLetter,
            producer: producer!,
            encode: (m) => m as never,
          })
        : undefined;

    let changelog: WorkerOptions['changelog'];
    if (stateful) {
      const group = o.flags?.group ?? spec.source.group;
      const state = new StateChangelog(plan, {
        connection: conns.kafka,
        topic: changelogTopic(plan.topology, group),
        log: o.log,
      });
      const source = await topicShape(kafka, spec.source.topic);
      const topicSpec = changelogTopicSpec(plan.topology, source?.partitions ?? 1, group);
      // As replicated as the source really is (a local single broker), never more than the topology says.
      if (source) topicSpec.replicas = Math.min(topicSpec.replicas, source.replicas);
      if (topicSpec.minInSync !== undefined) topicSpec.minInSync = Math.min(topicSpec.minInSync, topicSpec.replicas);
      await state.ensureTopic(topicSpec);
      changelog = {
        sink: new KafkaSink({
          id: 'state-changelog',
          topic: state.topic,
          producer: producer!,
          encode: (m) => m as never,
        }),
        messages: (partition, last) => state.messages(partition, last),
        restore: (partitions) => state.restore(partitions),
      };
    }

    // Up before the tables load: /readyz says what it waits for meanwhile.
    let server: ObserveServer | undefined;
    let worker: Worker | undefined;
    if (o.observe !== false) {
      const sinkChecks = ch
        ? [
            async () => {
              const ok = await ch!.client.ping().then(
                (r) => r.success,
                () => false,
              );
              return ok ? [] : [`${plan.name}: ClickHouse (${ch!.description}) does not answer`];
            },
          ]
        : [];
      server = await startObserveServer({
        metrics: metrics!,
        ...(o.observe ?? { host: '127.0.0.1', port: 19100 }),
        checks: sinkChecks,
        liveness: () => worker?.health() ?? [],
      });
      const srv = server;
      cleanups.push(() => srv.close());
      o.log.info({ url: server.url }, 'metrics and health endpoints');
    }
    // Lookup tables: loaded before the consumer joins, so the first batch already sees them.
    const loaders: TableLoader[] = [];
    for (const [name, table] of Object.entries(spec.tables)) {
      const type = plan.tableTypes.get(name);
      const loader = new TableLoader({
        kafka,
        table: name,
        topic: table.topic,
        store: plan.tables,
        decoder: type ? new AvroCodec({ registry, readers: [type], unknownRecord: 'writer' }) : jsonDecoder,
        group: `pipelines-${plan.name}-table-${name}-${hostname()}-${process.pid}-${Date.now()}`,
        log: o.log,
        progress: (e) => events?.table?.(e),
      });
      loaders.push(loader);
      cleanups.push(() => loader.stop());
      await loader.start();
    }
    await Promise.all(loaders.map((l) => l.caughtUp));

    worker = new Worker({
      topology: plan.name,
      client: kafkaSource(kafka),
      source: { topic: spec.source.topic, group: o.flags?.group ?? spec.source.group, start: spec.source.start },
      decoder,
      processor: plan,
      sinks,
      ...(deadLetters ? { deadLetters } : {}),
      ...(changelog ? { changelog } : {}),
      ...(transactional
        ? {
            transactional: {
              producer: producer as unknown as TransactionalProducer,
              sinks: kafkaSinks,
              renew: renewProducer as unknown as () => Promise<TransactionalProducer>,
            },
          }
        : {}),
      retry: {
        ...defaultRetry,
        initialMs: spec.errors.retry.backoff.min,
        maxMs: spec.errors.retry.backoff.max,
      },
      ...(o.tuning?.flushIntervalMs ? { flushIntervalMs: o.tuning.flushIntervalMs } : {}),
      ...(o.tuning?.maxBatchSize ? { maxBatchSize: o.tuning.maxBatchSize } : {}),
      ...(o.tuning?.shutdownTimeoutMs ? { shutdownTimeoutMs: o.tuning.shutdownTimeoutMs } : {}),
      log: o.log,
      events: o.onBatch
        ? {
            ...events,
            batch: (e) => {
              events?.batch(e);
              o.onBatch!(e);
            },
          }
        : events,
    });
    const started = worker;
    await started.start();
    if (events) {
      const group = o.flags?.group ?? spec.source.group;
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
        await started.stop();
        await closeAll();
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
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

function userError(message: string): Error {
  return Object.assign(new Error(message), { userFacing: true });
}
