// The worker loop: one consumer-group member running one topology.
//   fetch batch → decode (sync, types cached) → steps (sync) → append to sinks → flush → commit
// Offsets are committed only when every sink has made the records up to them durable. Bad records go to
// the dead-letter topic with their provenance; transient sink failures are retried with backoff while the
// consumer is paused; SIGTERM drains, flushes, commits and leaves the group within a bounded time.
import type { KafkaJS } from '@confluentinc/kafka-javascript';
import { childTraceHeaders, deadLetterHeaders, type Headers } from '../kafka/headers.ts';
import type { KafkaMessage, KafkaSink } from '../sinks/kafka.ts';
import type { Sink } from '../sinks/sink.ts';
import { CommitTracker } from './commits.ts';
import { backoffDelay, type RetryPolicy } from './retry.ts';

export interface InputRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: unknown;
  /** Kafka record timestamp (ms). */
  timestamp: number;
  headers: Headers;
}

export interface DeadLetter {
  record: InputRecord;
  step: string;
  error: Error;
}

/** The topology's steps, as the worker sees them: one synchronous call per batch of one partition. */
export interface BatchProcessor {
  process(records: InputRecord[], now: number): { outputs: Map<string, unknown[]>; deadLetters: DeadLetter[] };
}

export interface Decoder {
  prepare(values: Iterable<Buffer | null | undefined>): Promise<void>;
  decode(value: Buffer): unknown;
}

export interface WorkerLog {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
  error(o: object, msg: string): void;
}

/** What the worker reports as it runs; the metrics module listens. All optional. */
export interface WorkerEvents {
  batch?(e: { topic: string; partition: number; records: number; highWatermark: string; lastOffset: string }): void;
  deadLetter?(e: { step: string; errorClass: string }): void;
  flushed?(e: { sink: string; ms: number }): void;
  retry?(e: { what: string; attempt: number; error: Error }): void;
  committed?(e: { partitions: number; ms: number }): void;
  rebalance?(e: { kind: 'assign' | 'revoke'; partitions: Array<{ topic: string; partition: number }> }): void;
  paused?(paused: boolean): void;
}

export interface WorkerOptions {
  topology: string;
  kafka: KafkaJS.Kafka;
  /** librdkafka consumer properties beyond group and offsets (e.g. security). */
  consumerConfig?: Record<string, unknown>;
  source: { topic: string; group: string; start: 'earliest' | 'latest' };
  decoder: Decoder;
  processor: BatchProcessor;
  sinks: Sink[];
  /** The dead-letter sink; without one a bad record stops the worker (nothing is dropped silently). */
  deadLetters?: KafkaSink;
  /** Exactly-once Kafka-to-Kafka: every output and the offsets go in one transaction per batch. */
  transactional?: { producer: KafkaJS.Producer; sinks: KafkaSink[] };
  retry: RetryPolicy;
  flushIntervalMs?: number;
  /** Buffered rows across sinks above which the consumer pauses until a flush brings them down. */
  maxBufferedRows?: number;
  maxBatchSize?: number;
  shutdownTimeoutMs?: number;
  log: WorkerLog;
  events?: WorkerEvents;
  now?: () => number;
}

export class FatalWorkerError extends Error {
  readonly userFacing = true;
}

export class Worker {
  readonly #o: WorkerOptions;
  readonly #tracker = new CommitTracker();
  readonly #consumer: KafkaJS.Consumer;
  readonly #raw = new WeakMap<InputRecord, { key: Buffer | null; value: Buffer | null }>();
  #assigned: Array<{ topic: string; partition: number }> = [];
  #stopping = false;
  #flushing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #paused = false;
  #inBatch: Promise<void> | undefined;
  #failure: Error | undefined;
  #done!: (err?: Error) => void;
  readonly finished: Promise<void>;

  constructor(o: WorkerOptions) {
    this.#o = o;
    this.finished = new Promise((resolve, reject) => {
      this.#done = (err) => (err ? reject(err) : resolve());
    });
    this.#consumer = o.kafka.consumer({
      ...o.consumerConfig,
      'group.id': o.source.group,
      'enable.auto.commit': false,
      'auto.offset.reset': o.source.start,
      'partition.assignment.strategy': 'cooperative-sticky',
      'js.consumer.max.batch.size': o.maxBatchSize ?? 5000,
      // Bounds what librdkafka prefetches per partition: memory in flight stays bounded.
      'queued.max.messages.kbytes': 16384,
      ...(o.transactional ? { 'isolation.level': 'read_committed' } : {}),
      rebalance_cb: (err: { code: number }, assignment: Array<{ topic: string; partition: number }>) =>
        this.#onRebalance(err.code, assignment),
    });
  }

  get assignment(): ReadonlyArray<{ topic: string; partition: number }> {
    return this.#assigned;
  }

  get paused(): boolean {
    return this.#paused;
  }

  async start(): Promise<void> {
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topics: [this.#o.source.topic] });
    await this.#consumer.run({
      eachBatchAutoResolve: false,
      eachBatch: async (payload) => {
        if (this.#stopping || this.#failure) return;
        const work = this.#handleBatch(payload);
        this.#inBatch = work.catch(() => {});
        try {
          await work;
        } catch (err) {
          this.#fail(err as Error);
        }
      },
    });
    if (!this.#o.transactional) {
      this.#timer = setInterval(
        () => void this.#flushCycle().catch((e) => this.#fail(e)),
        this.#o.flushIntervalMs ?? 1000,
      );
    }
  }

  async #handleBatch({ batch }: KafkaJS.EachBatchPayload): Promise<void> {
    const o = this.#o;
    const msgs = batch.messages;
    if (msgs.length === 0) return;
    const { topic, partition } = batch;
    await this.#withRetry('registry', () => o.decoder.prepare(msgs.map((m) => m.value)));
    const records: InputRecord[] = [];
    const dead: DeadLetter[] = [];
    for (const m of msgs) {
      const rec: InputRecord = {
        topic,
        partition,
        offset: m.offset,
        key: m.key ? m.key.toString() : null,
        value: undefined,
        timestamp: Number(m.timestamp),
        headers: (m.headers ?? {}) as Headers,
      };
      this.#raw.set(rec, { key: m.key ?? null, value: m.value ?? null });
      try {
        if (!m.value) throw new DecodeError('empty value (tombstone) on an event topic');
        rec.value = o.decoder.decode(m.value);
        records.push(rec);
      } catch (err) {
        dead.push({ record: rec, step: 'decode', error: err as Error });
      }
    }
    const result = o.processor.process(records, (o.now ?? Date.now)());
    dead.push(...result.deadLetters);
    const lastOffset = msgs[msgs.length - 1]!.offset;

    if (o.transactional) {
      await this.#commitTransaction(topic, partition, lastOffset, result.outputs, dead);
    } else {
      const used = this.#sinksOf(result.outputs, dead);
      const seq = this.#tracker.track(
        { topic, partition },
        lastOffset,
        used.map((s) => s.id),
      );
      this.#appendAll(result.outputs, dead, seq);
      void this.#commitReady().catch((e) => this.#fail(e));
    }
    o.events?.batch?.({ topic, partition, records: msgs.length, highWatermark: batch.highWatermark, lastOffset });
    if (!o.transactional && (this.#overLimit() || o.sinks.some((s) => s.full))) {
      this.#setPaused(true);
      void this.#flushCycle().catch((e) => this.#fail(e));
    }
  }

  /** Hands outputs and dead letters to their sinks. */
  #appendAll(outputs: Map<string, unknown[]>, dead: DeadLetter[], seq: number): void {
    for (const sink of this.#o.sinks) {
      const rows = outputs.get(sink.id);
      if (rows && rows.length > 0) sink.append(rows, seq);
    }
    if (dead.length > 0) {
      this.#requireDeadLetters(dead[0]!).append(
        dead.map((d) => this.#deadLetterMessage(d)),
        seq,
      );
    }
  }

  /** The sinks this batch's output goes to (checked before anything is appended). */
  #sinksOf(outputs: Map<string, unknown[]>, dead: DeadLetter[]): Sink[] {
    const out = this.#o.sinks.filter((s) => (outputs.get(s.id)?.length ?? 0) > 0);
    if (dead.length > 0) out.push(this.#requireDeadLetters(dead[0]!));
    return out;
  }

  #requireDeadLetters(d: DeadLetter): KafkaSink {
    if (this.#o.deadLetters) return this.#o.deadLetters;
    throw new FatalWorkerError(
      `record ${d.record.topic}/${d.record.partition}@${d.record.offset} failed at step '${d.step}' ` +
        `(${d.error.name}: ${d.error.message}) and the topology has no dead-letter topic: ` +
        'set spec.errors.deadLetter, fix the data, or skip it by resetting the group offset',
    );
  }

  #deadLetterMessage(d: DeadLetter): KafkaMessage {
    const raw = this.#raw.get(d.record);
    return {
      key: raw?.key ?? null,
      value: raw?.value ?? null,
      headers: deadLetterHeaders(
        {
          topic: d.record.topic,
          partition: d.record.partition,
          offset: d.record.offset,
          timestamp: String(d.record.timestamp),
          topology: this.#o.topology,
          step: d.step,
          errorClass: d.error.name || d.error.constructor.name,
          errorMessage: d.error.message,
        },
        d.record.headers,
      ),
    };
  }

  async #commitTransaction(
    topic: string,
    partition: number,
    lastOffset: string,
    outputs: Map<string, unknown[]>,
    dead: DeadLetter[],
  ): Promise<void> {
    const t = this.#o.transactional!;
    this.#appendAll(outputs, dead, 0);
    const sends = [...t.sinks, ...(this.#o.deadLetters ? [this.#o.deadLetters] : [])].map((s) => ({
      topic: s.topic,
      messages: s.drain(),
    }));
    await this.#withRetry('transaction', async () => {
      const tx = await t.producer.transaction();
      try {
        for (const s of sends) if (s.messages.length > 0) await tx.send(s);
        await tx.sendOffsets({
          consumer: this.#consumer,
          topics: [{ topic, partitions: [{ partition, offset: (BigInt(lastOffset) + 1n).toString() }] }],
        });
        await tx.commit();
      } catch (err) {
        await tx.abort().catch(() => {});
        throw err;
      }
    });
  }

  #overLimit(): boolean {
    const limit = this.#o.maxBufferedRows ?? 200_000;
    let n = this.#o.deadLetters?.buffered ?? 0;
    for (const s of this.#o.sinks) n += s.buffered;
    return n >= limit;
  }

  /** One flush of every sink at a time; acknowledged batches become committable offsets. */
  #flushCycle(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    this.#flushing = (async () => {
      try {
        const sinks = [...this.#o.sinks, ...(this.#o.deadLetters ? [this.#o.deadLetters] : [])];
        await Promise.all(
          sinks.map(async (sink) => {
            const started = Date.now();
            const seq = await this.#withRetry(`sink ${sink.id}`, () => sink.flush());
            if (seq !== undefined) {
              this.#tracker.acknowledge(sink.id, seq);
              this.#o.events?.flushed?.({ sink: sink.id, ms: Date.now() - started });
            }
          }),
        );
        await this.#commitReady();
        if (this.#paused && !this.#overLimit()) this.#setPaused(false);
      } finally {
        this.#flushing = undefined;
      }
    })();
    return this.#flushing;
  }

  async #commitReady(): Promise<void> {
    const offsets = this.#tracker.takeCommittable();
    if (offsets.length === 0) return;
    const started = Date.now();
    await this.#withRetry('commit', () => this.#consumer.commitOffsets(offsets));
    this.#o.events?.committed?.({ partitions: offsets.length, ms: Date.now() - started });
  }

  /** Retries retriable failures with backoff until they pass or the worker stops; others are thrown. */
  async #withRetry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const e = err as Error & { retriable?: boolean };
        const limit = this.#o.retry.maxAttempts;
        if (e.retriable === false || this.#stopping || (limit !== undefined && attempt >= limit)) throw e;
        this.#o.events?.retry?.({ what, attempt, error: e });
        this.#o.log.warn({ what, attempt, err: e.message }, `${what} failed, retrying`);
        if (attempt === 1 && what.startsWith('sink')) this.#setPaused(true);
        await new Promise((r) => setTimeout(r, backoffDelay(this.#o.retry, attempt)));
      }
    }
  }

  #setPaused(paused: boolean): void {
    if (paused === this.#paused || this.#assigned.length === 0) return;
    this.#paused = paused;
    const topics = [{ topic: this.#o.source.topic }];
    if (paused) this.#consumer.pause(topics);
    else this.#consumer.resume(topics);
    this.#o.events?.paused?.(paused);
    this.#o.log.info({ paused }, paused ? 'consumer paused: sinks are behind' : 'consumer resumed');
  }

  async #onRebalance(code: number, assignment: Array<{ topic: string; partition: number }>): Promise<void> {
    const partitions = assignment.map(({ topic, partition }) => ({ topic, partition }));
    if (code === -175 /* ERR__ASSIGN_PARTITIONS */) {
      const known = new Set(this.#assigned.map((tp) => `${tp.topic}/${tp.partition}`));
      this.#assigned.push(...partitions.filter((tp) => !known.has(`${tp.topic}/${tp.partition}`)));
      this.#o.events?.rebalance?.({ kind: 'assign', partitions });
      this.#o.log.info({ partitions: partitions.map((p) => p.partition) }, 'partitions assigned');
      return;
    }
    // Revoked: make what we did for these partitions durable and committed before another member takes over.
    this.#o.events?.rebalance?.({ kind: 'revoke', partitions });
    if (!this.#o.transactional && !this.#failure) {
      await this.#inBatch;
      await this.#flushCycle().catch((e) => this.#o.log.warn({ err: e.message }, 'flush on revoke failed'));
    }
    this.#tracker.forget(partitions);
    const gone = new Set(partitions.map((tp) => `${tp.topic}/${tp.partition}`));
    this.#assigned = this.#assigned.filter((tp) => !gone.has(`${tp.topic}/${tp.partition}`));
    this.#o.log.info({ partitions: partitions.map((p) => p.partition) }, 'partitions revoked');
  }

  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#o.log.error({ err: err.message }, 'worker failed: stopping');
    void this.stop().finally(() => this.#done(err));
  }

  /** Stops fetching, finishes the batch in hand, flushes, commits and leaves the group, within a bound. */
  async stop(): Promise<void> {
    if (this.#stopping) return this.finished.catch(() => {});
    this.#stopping = true;
    if (this.#timer) clearInterval(this.#timer);
    const timeout = this.#o.shutdownTimeoutMs ?? 20_000;
    const drain = async () => {
      await this.#inBatch;
      if (!this.#failure && !this.#o.transactional) await this.#flushCycle();
      await this.#consumer.disconnect();
    };
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      drain().then(() => 'drained' as const),
      new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), timeout);
      }),
    ]).catch((e: Error) => e);
    clearTimeout(timer);
    await Promise.all([...this.#o.sinks.map((s) => s.close()), this.#o.deadLetters?.close()]).catch(() => {});
    if (outcome === 'timeout') {
      this.#o.log.warn({ timeoutMs: timeout }, 'shutdown timed out: uncommitted records will be processed again');
    } else if (outcome instanceof Error) {
      this.#o.log.warn({ err: outcome.message }, 'shutdown: final flush or commit failed');
    }
    if (!this.#failure) this.#done();
  }
}

export class DecodeError extends Error {
  override name = 'DecodeError';
  readonly retriable = false;
}

/** Output headers for a record produced from `input`: the trace continues. */
export function outputHeaders(input: InputRecord): Record<string, string> {
  return childTraceHeaders(input.headers);
}
