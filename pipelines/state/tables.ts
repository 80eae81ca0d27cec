// Lookup tables from compacted topics: every worker reads the whole topic into its plan's table store at start
// (it is not ready until caught up with the end offsets it saw then) and keeps reading to stay current.
// A null value (tombstone) deletes the key. Reads are done by a private consumer group that commits nothing.
import type { KafkaJS } from '@confluentinc/kafka-javascript';
import type { Decoder } from '../codec/decoder.ts';
import { BatchConsumer, type FetchedBatch } from '../kafka/batch-consumer.ts';
import { topicOffsets } from '../kafka/offsets.ts';
import type { WorkerLog } from '../observe/log.ts';
import { defaultRetry, retrying } from '../retry.ts';

export interface TableStoreApi {
  upsert(table: string, key: string | number, row: unknown): void;
  delete(table: string, key: string | number): void;
  keyOf(table: string, row: unknown): string | undefined;
  size(table: string): number;
}

export interface TableLoaderOptions {
  /** For the admin calls (end offsets, the group's removal). */
  kafka: KafkaJS.Kafka;
  /** The connection's librdkafka properties (bootstrap servers, security), for the table's consumer. */
  connection: Record<string, unknown>;
  table: string;
  topic: string;
  store: TableStoreApi;
  decoder: Decoder;
  /** Unique per process: each worker reads the whole table. */
  group: string;
  log: WorkerLog;
  /** Size and distance from the end, for metrics and readiness. */
  progress?: (e: { topic: string; rows: number; behind: number; skipped: number }) => void;
  /** Start-up gave up (its deadline passed, or the worker is stopping): the wait for the table's offsets ends. */
  gaveUp?: () => boolean;
  /** librdkafka properties for the table's consumer (the memory budget's fetch bounds). */
  consumerConfig?: Record<string, string | number>;
}

export class TableLoader {
  readonly #o: TableLoaderOptions;
  #consumer: BatchConsumer | undefined;
  #ends = new Map<number, bigint>();
  #positions = new Map<number, bigint>();
  #caughtUp!: () => void;
  /** Resolves once every partition reached the end offset seen at start. */
  readonly caughtUp: Promise<void>;
  #isCaughtUp = false;
  #skipped = 0;
  #stopping = false;

  constructor(o: TableLoaderOptions) {
    this.#o = o;
    this.caughtUp = new Promise((resolve) => {
      this.#caughtUp = resolve;
    });
  }

  get isCaughtUp(): boolean {
    return this.#isCaughtUp;
  }

  /** Records left to read before caught up. */
  get behind(): number {
    let n = 0n;
    for (const [p, end] of this.#ends) {
      const pos = this.#positions.get(p) ?? 0n;
      if (end > pos) n += end - pos;
    }
    return Number(n);
  }

  async start(): Promise<void> {
    const o = this.#o;
    // Waits out a broker that is starting: a table taken as empty would be caught up with none of its rows.
    const offsets = await retrying(
      defaultRetry,
      async () => {
        const admin = o.kafka.admin();
        try {
          await admin.connect();
          return await topicOffsets(admin, o.topic);
        } finally {
          // Also when connect failed: a client left half-open crashed the process later (kafka/README.md).
          await admin.disconnect().catch(() => {});
        }
      },
      {
        stopped: () => this.#stopping || (o.gaveUp?.() ?? false),
        onRetry: (err, attempt) => o.log.warn({ table: o.table, attempt, err: err.message }, 'table offsets wait'),
      },
    );
    for (const p of offsets) {
      this.#ends.set(p.partition, BigInt(p.high));
      this.#positions.set(p.partition, BigInt(p.low));
    }
    this.#check();
    // The worker's batch consumer, not the client's KafkaJS layer: a 1M-row catch-up must not sit in that layer's
    // message cache too.
    const consumer = new BatchConsumer({
      config: {
        ...o.connection,
        'group.id': o.group,
        'enable.auto.commit': false,
        'auto.offset.reset': 'earliest',
        'js.consumer.max.batch.size': 10_000,
        ...o.consumerConfig,
      },
      // Nothing to commit or hand over: every process reads the whole table in a group of its own.
      onRebalance: async () => {},
      onError: (err) => o.log.warn({ table: o.table, err: err.message }, 'table consumer'),
    });
    this.#consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topics: [o.topic] });
    await consumer.run({
      batchesInHand: 1,
      eachBatch: async ({ batch }: { batch: FetchedBatch }) => {
        // The registry client retries as the topology says; if it gives up, the batch is not dropped (the table
        // would miss its rows): it waits for the registry, as the consumer's redelivery did.
        await retrying(defaultRetry, () => o.decoder.prepare(batch.messages.map((m) => m.value)), {
          stopped: () => this.#stopping,
          onRetry: (err, attempt) => o.log.warn({ table: o.table, attempt, err: err.message }, 'table batch waits'),
        });
        let applied = 0;
        const skipped = this.#skipped;
        for (const m of batch.messages) {
          const kafkaKey = m.key?.toString();
          try {
            if (!m.value) {
              if (kafkaKey !== undefined) o.store.delete(o.table, kafkaKey);
              continue;
            }
            const row = o.decoder.decode(m.value);
            const key = o.store.keyOf(o.table, row) ?? kafkaKey;
            if (key === undefined) throw new Error('row has neither its key field nor a Kafka key');
            o.store.upsert(o.table, key, row);
            applied++;
          } catch (err) {
            // A table row that cannot be read is skipped (said and counted): the table is the latest good state.
            this.#skipped++;
            o.log.warn(
              { table: o.table, partition: batch.partition, offset: m.offset, err: (err as Error).message },
              'table row skipped',
            );
          }
        }
        const last = batch.messages[batch.messages.length - 1];
        if (last) this.#positions.set(batch.partition, BigInt(last.offset) + 1n);
        // Skips too: a batch of unreadable rows only must still move the skipped count.
        if (applied > 0 || this.#skipped > skipped || !this.#isCaughtUp) this.#check();
      },
    });
  }

  #check(): void {
    const o = this.#o;
    o.progress?.({ topic: o.topic, rows: o.store.size(o.table), behind: this.behind, skipped: this.#skipped });
    if (!this.#isCaughtUp && this.behind === 0) {
      this.#isCaughtUp = true;
      this.#o.log.info({ table: this.#o.table, rows: this.#o.store.size(this.#o.table) }, 'table caught up');
      this.#caughtUp();
    }
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#consumer?.disconnect();
    const admin = this.#o.kafka.admin();
    await admin.connect();
    await admin.deleteGroups([this.#o.group]).catch(() => {});
    await admin.disconnect();
  }
}
