// The worker loop: one consumer-group member running one topology.
//   fetch batch → decode (sync, types cached) → steps (sync) → append to sinks → flush → commit
// Offsets are committed only when every sink has made the output of the records before them durable. Bad
// records go to the dead-letter topic with their provenance; transient failures are retried with backoff while
// the consumer is paused; SIGTERM drains, flushes, commits and leaves the group within a bounded time.
import type { KafkaJS } from '@confluentinc/kafka-javascript';
import { isTransientKafkaError } from '../kafka/errors.ts';
import { deadLetterHeaders, type Headers } from '../kafka/headers.ts';
import { type KafkaMessage, type KafkaSink, sendable } from '../sinks/kafka.ts';
import type { ReplayRange, Sink } from '../sinks/sink.ts';
import type { DeadLetter, SourceRecord } from '../topology/plan.ts';
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

export interface StepResult {
  sinks: Record<string, unknown[]>;
  deadLetters: DeadLetter[];
}

/** The topology's steps as the worker sees them (the compiled plan): synchronous calls, time from the worker. */
export interface BatchProcessor {
  /** One batch of one partition; outputs per sink id, in order. */
  process(records: InputRecord[], now: number): StepResult;
  /** Per 'topic/partition', the oldest offset still held by a step: nothing at or past it is committed. */
  heldOffsets?(): Record<string, number | bigint | string>;
  /** The partition was assigned (before its first batch). */
  assignPartition?(partition: number, now: number): void;
  /** The partition was revoked: drop what is held for it. */
  releasePartition?(partition: number): void;
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
  batch?(e: {
    topic: string;
    partition: number;
    records: number;
    highWatermark: string;
    lastOffset: string;
    lastTimestamp: number;
    outputs: Record<string, unknown[]>;
    /** Kafka timestamps (ms) of the batch's records; only when `acknowledged` is listened to. */
    timestamps?: Float64Array;
  }): void;
  stepped?(e: { step: string; ms: number; recordsIn: number; recordsOut: number }): void;
  deadLetter?(e: { step: string; errorClass: string; records?: number }): void;
  flushed?(e: { sink: string; ms: number }): void;
  retry?(e: { what: string; attempt: number; error: Error }): void;
  committed?(e: { partitions: number; ms: number }): void;
  /** A sink made everything of a partition before `next` durable (after a flush, or a transaction). */
  acknowledged?(e: { sink: string; topic: string; partition: number; next: string }): void;
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
  /**
   * The state changelog (topologies with fold, aggregate or dedupe): a batch's state changes are sent after its
   * outputs are durable (or in its transaction), and read back when a partition is assigned.
   */
  changelog?: {
    sink: KafkaSink;
    messages(partition: number, lastOffset: string): KafkaMessage[];
    restore(partitions: number[]): Promise<Map<number, bigint>>;
  };
  /** Exactly-once Kafka-to-Kafka: every output and the offsets go in one transaction per batch. */
  transactional?: { producer: KafkaJS.Producer; sinks: KafkaSink[]; renew(): Promise<KafkaJS.Producer> };
  retry: RetryPolicy;
  flushIntervalMs?: number;
  /** Buffered rows across sinks above which the consumer pauses until a flush brings them down. */
  maxBufferedRows?: number;
  maxBatchSize?: number;
  /** Partitions handled at the same time (default 3). */
  concurrency?: number;
  shutdownTimeoutMs?: number;
  log: WorkerLog;
  events?: WorkerEvents;
  now?: () => number;
}

export class FatalWorkerError extends Error {
  readonly userFacing = true;
}

export class DecodeError extends Error {
  override name = 'DecodeError';
  readonly retriable = false;
}

const tpKey = (topic: string, partition: number) => `${topic}/${partition}`;
const NO_HEADERS: Headers = Object.freeze({}) as Headers;

/** Record → its Kafka message, built only for a batch that has dead letters. */
function rawMessages(records: InputRecord[], msgs: KafkaJS.KafkaMessage[]): Map<SourceRecord, KafkaJS.KafkaMessage> {
  const m = new Map<SourceRecord, KafkaJS.KafkaMessage>();
  for (let i = 0; i < records.length; i++) m.set(records[i]!, msgs[i]!);
  return m;
}

/** The producer's epoch is stale (ERR__FENCED, PRODUCER_FENCED, INVALID_PRODUCER_EPOCH). */
function isFenced(err: unknown): boolean {
  const e = err as { code?: number; message?: string };
  return e.code === -144 || e.code === 90 || e.code === 47 || /fenced by a newer instance/i.test(e.message ?? '');
}

export class Worker {
  readonly #o: WorkerOptions;
  readonly #tracker = new CommitTracker();
  readonly #consumer: KafkaJS.Consumer;
  /** Per partition and sink, a range the sink already holds (records before it are skipped for that sink). */
  readonly #replays = new Map<string, Map<string, ReplayRange>>();
  /** Per partition, the offset after the last record processed: a batch handed out again is not processed twice. */
  readonly #next = new Map<string, bigint>();
  /** Per partition, the last offset whose effects the restored state already holds: those records are skipped. */
  readonly #restored = new Map<string, bigint>();
  /** State changes of processed batches, waiting for their outputs to be flushed (at-least-once mode). */
  #pendingState: Array<{
    range: { topic: string; partition: number; first: string; last: string };
    messages: KafkaMessage[];
  }> = [];
  /** Per partition, which assignment of it this is: work begun under an earlier one belongs to another member. */
  readonly #holds = new Map<string, number>();
  #assignments = 0;
  #assigned: Array<{ topic: string; partition: number }> = [];
  #stopping = false;
  #flushing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #paused = false;
  /** The transaction in progress (exactly-once mode): the next one starts when it is done. */
  #transactions: Promise<void> = Promise.resolve();
  /** The transactional producer failed beyond an abort: the next attempt starts with a new one. */
  #renewProducer = false;
  /** Batches being handled (one per partition at most). */
  readonly #inBatch = new Set<Promise<void>>();
  #failure: Error | undefined;
  #done!: (err?: Error) => void;
  readonly finished: Promise<void>;

  constructor(o: WorkerOptions) {
    this.#o = o;
    this.finished = new Promise((resolve, reject) => {
      this.#done = (err) => (err ? reject(err) : resolve());
    });
    for (const sink of [...this.#allSinks(), ...(o.changelog ? [o.changelog.sink] : [])]) {
      sink.onAck = (a) => {
        this.#tracker.acknowledge(sink.id, a, a.next);
        o.events?.acknowledged?.({ sink: sink.id, topic: a.topic, partition: a.partition, next: a.next });
      };
    }
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
    } as never);
  }

  get assignment(): ReadonlyArray<{ topic: string; partition: number }> {
    return this.#assigned;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Positions of the consumer per assigned partition (for progress and catch-up checks). */
  get consumer(): KafkaJS.Consumer {
    return this.#consumer;
  }

  async start(): Promise<void> {
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topics: [this.#o.source.topic] });
    await this.#consumer.run({
      // Partitions are handled concurrently: while one batch is processed the next partition's fetch proceeds.
      // Per partition, batches stay in order (the client never hands out two batches of one partition at once).
      partitionsConsumedConcurrently: this.#o.concurrency ?? 3,
      // Resolving advances the consumer's position only; commits stay ours (enable.auto.commit=false).
      eachBatchAutoResolve: true,
      eachBatch: async (payload) => {
        if (this.#stopping || this.#failure) return;
        const work = this.#handleBatch(payload);
        const settled = work.catch(() => {});
        this.#inBatch.add(settled);
        try {
          await work;
        } catch (err) {
          this.#fail(err as Error);
        } finally {
          this.#inBatch.delete(settled);
        }
      },
    });
    if (!this.#o.transactional) {
      this.#timer = setInterval(() => {
        this.#flushCycle().catch((e) => this.#fail(e));
      }, this.#o.flushIntervalMs ?? 1000);
    }
  }

  async #handleBatch({ batch }: KafkaJS.EachBatchPayload): Promise<void> {
    const o = this.#o;
    // A macrotask turn per batch: when the client hands out queued batches back to back (a backlog), everything
    // else would wait for the end of it: the flush timer (so commits), /healthz and /metrics.
    await new Promise((r) => setImmediate(r));
    if (this.#stopping || this.#failure) return;
    const { topic, partition } = batch;
    // pause() during a batch makes the client hand the same records out again after resume(): skip them.
    const next = this.#next.get(tpKey(topic, partition));
    let msgs = next === undefined ? batch.messages : batch.messages.filter((m) => BigInt(m.offset) >= next);
    const restored = this.#restored.get(tpKey(topic, partition));
    if (restored !== undefined && msgs.length > 0) {
      // The state read back already holds these records' effects, and their outputs were durable before it.
      const last = msgs[msgs.length - 1]!.offset;
      msgs = msgs.filter((m) => BigInt(m.offset) > restored);
      if (BigInt(last) >= restored) this.#restored.delete(tpKey(topic, partition));
      if (msgs.length === 0) {
        this.#next.set(tpKey(topic, partition), BigInt(last) + 1n);
        if (!o.transactional) {
          this.#tracker.track({ topic, partition }, last, []);
          this.#commitReady().catch((e) => this.#fail(e));
        }
        return;
      }
    }
    if (msgs.length === 0) return;
    this.#next.set(tpKey(topic, partition), BigInt(msgs[msgs.length - 1]!.offset) + 1n);
    await this.#withRetry('registry', () => o.decoder.prepare(msgs.map((m) => m.value)));
    const outputs: Record<string, unknown[]> = {};
    for (const segment of this.#segments(topic, partition, msgs)) {
      const seg = await this.#processSegment(topic, partition, segment.messages, segment.skip);
      for (const [id, rows] of Object.entries(seg)) {
        const list = outputs[id];
        if (list) list.push(...rows);
        else outputs[id] = rows;
      }
    }
    const last = msgs[msgs.length - 1]!;
    let timestamps: Float64Array | undefined;
    if (o.events?.acknowledged) {
      timestamps = new Float64Array(msgs.length);
      for (let i = 0; i < msgs.length; i++) timestamps[i] = Number(msgs[i]!.timestamp);
    }
    o.events?.batch?.({
      topic,
      partition,
      records: msgs.length,
      highWatermark: batch.highWatermark,
      lastOffset: last.offset,
      lastTimestamp: Number(last.timestamp),
      outputs,
      timestamps,
    });
    if (!o.transactional && this.#overLimit()) {
      this.#setPaused(true);
      this.#flushCycle().catch((e) => this.#fail(e));
    }
  }

  /**
   * Splits a batch where a sink's replay range begins and ends: before it that sink is skipped (it holds those
   * records already), and the range itself is handed over as one piece so the sink can repeat its writes exactly.
   */
  #segments(
    topic: string,
    partition: number,
    msgs: KafkaJS.KafkaMessage[],
  ): Array<{ messages: KafkaJS.KafkaMessage[]; skip: Set<string> }> {
    const replays = this.#replays.get(tpKey(topic, partition));
    if (!replays || replays.size === 0) return [{ messages: msgs, skip: new Set() }];
    const cuts = new Set<bigint>();
    for (const r of replays.values()) {
      cuts.add(BigInt(r.first));
      cuts.add(BigInt(r.last) + 1n);
    }
    const out: Array<{ messages: KafkaJS.KafkaMessage[]; skip: Set<string> }> = [];
    let current: KafkaJS.KafkaMessage[] = [];
    const close = () => {
      if (current.length === 0) return;
      const first = BigInt(current[0]!.offset);
      const skip = new Set<string>();
      for (const [sink, r] of replays) if (first < BigInt(r.first)) skip.add(sink);
      out.push({ messages: current, skip });
      current = [];
    };
    for (const m of msgs) {
      if (cuts.has(BigInt(m.offset))) close();
      current.push(m);
    }
    close();
    // Replays that are behind us are done.
    const lastOffset = BigInt(msgs[msgs.length - 1]!.offset);
    for (const [sink, r] of replays) if (lastOffset >= BigInt(r.last)) replays.delete(sink);
    return out;
  }

  async #processSegment(
    topic: string,
    partition: number,
    msgs: KafkaJS.KafkaMessage[],
    skip: ReadonlySet<string>,
  ): Promise<Record<string, unknown[]>> {
    const o = this.#o;
    const records: InputRecord[] = [];
    const dead: DeadLetter[] = [];
    // Every record, decoded or not, beside its Kafka message: dead letters carry the original bytes.
    const all: InputRecord[] = new Array(msgs.length);
    const started = performance.now();
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i]!;
      const rec: InputRecord = {
        topic,
        partition,
        offset: m.offset,
        key: m.key ? m.key.toString() : null,
        value: undefined,
        timestamp: Number(m.timestamp),
        headers: (m.headers ?? NO_HEADERS) as Headers,
      };
      all[i] = rec;
      try {
        if (!m.value) throw new DecodeError('empty value (tombstone) on an event topic');
        rec.value = o.decoder.decode(m.value);
        records.push(rec);
      } catch (err) {
        const e = err as Error & { code?: string };
        dead.push({
          record: rec,
          stepId: 'decode',
          errorClass: e.code ?? e.name,
          message: e.message,
          retriable: false,
        });
      }
    }
    const decoded = performance.now();
    o.events?.stepped?.({ step: 'decode', ms: decoded - started, recordsIn: msgs.length, recordsOut: records.length });
    const result = records.length > 0 ? o.processor.process(records, (o.now ?? Date.now)()) : undefined;
    o.events?.stepped?.({
      step: 'steps',
      ms: performance.now() - decoded,
      recordsIn: records.length,
      recordsOut: Object.values(result?.sinks ?? {}).reduce((n, rows) => n + rows.length, 0),
    });
    if (result) dead.push(...result.deadLetters);
    const outputs: Record<string, unknown[]> = {};
    for (const [id, rows] of Object.entries(result?.sinks ?? {}))
      if (!skip.has(id) && rows.length > 0) outputs[id] = rows;
    for (const d of dead) o.events?.deadLetter?.({ step: d.stepId, errorClass: d.errorClass });
    const range = { topic, partition, first: msgs[0]!.offset, last: msgs[msgs.length - 1]!.offset };
    const state = o.changelog?.messages(partition, range.last);

    if (o.transactional) {
      await this.#commitTransaction(range, outputs, dead, all, msgs, this.#holds.get(tpKey(topic, partition)), state);
      return outputs;
    }
    const used = this.#o.sinks.filter((s) => outputs[s.id]);
    const dlq = dead.length > 0 ? this.#requireDeadLetters(dead[0]!) : undefined;
    this.#tracker.track(
      { topic, partition },
      range.last,
      [...used, ...(dlq ? [dlq] : []), ...(state ? [o.changelog!.sink] : [])].map((s) => s.id),
    );
    if (state) this.#pendingState.push({ range, messages: state });
    for (const sink of used) await sink.append(outputs[sink.id]!, range);
    if (dlq) {
      const raw = rawMessages(all, msgs);
      dlq.append(
        dead.map((d) => this.#deadLetterMessage(d, raw)),
        range,
      );
    }
    this.#commitReady().catch((e) => this.#fail(e));
    return outputs;
  }

  #allSinks(): Sink[] {
    return [...this.#o.sinks, ...(this.#o.deadLetters ? [this.#o.deadLetters] : [])];
  }

  #requireDeadLetters(d: DeadLetter): KafkaSink {
    if (this.#o.deadLetters) return this.#o.deadLetters;
    throw new FatalWorkerError(
      `record ${d.record.topic}/${d.record.partition}@${String(d.record.offset)} failed at step '${d.stepId}' ` +
        `(${d.errorClass}: ${d.message}) and the topology has no dead-letter topic: ` +
        'set spec.errors.deadLetter, fix the data, or skip it by resetting the group offset',
    );
  }

  #deadLetterMessage(d: DeadLetter, raws: Map<SourceRecord, KafkaJS.KafkaMessage>): KafkaMessage {
    const raw = raws.get(d.record);
    return {
      key: raw?.key ?? null,
      value: raw?.value ?? null,
      headers: deadLetterHeaders(
        {
          topic: d.record.topic,
          partition: d.record.partition,
          offset: String(d.record.offset),
          timestamp: String(d.record.timestamp),
          topology: this.#o.topology,
          step: d.stepId,
          errorClass: d.errorClass,
          errorMessage: d.message,
        },
        d.record.headers as Headers,
      ),
    };
  }

  async #commitTransaction(
    range: { topic: string; partition: number; first: string; last: string },
    outputs: Record<string, unknown[]>,
    dead: DeadLetter[],
    all: InputRecord[],
    msgs: KafkaJS.KafkaMessage[],
    hold: number | undefined,
    state: KafkaMessage[] | undefined,
  ): Promise<void> {
    const t = this.#o.transactional!;
    for (const sink of t.sinks) if (outputs[sink.id]) sink.append(outputs[sink.id]!, range);
    if (dead.length > 0) {
      const raw = rawMessages(all, msgs);
      this.#requireDeadLetters(dead[0]!).append(
        dead.map((d) => this.#deadLetterMessage(d, raw)),
        range,
      );
    }
    const sends = [...t.sinks, ...(this.#o.deadLetters ? [this.#o.deadLetters] : [])]
      .map((s) => ({ topic: s.topic, messages: s.drain() }))
      .filter((s) => s.messages.length > 0);
    if (state) sends.push({ topic: this.#o.changelog!.sink.topic, messages: state });
    // One transaction at a time on the one producer: batches of other partitions wait for their turn.
    const previous = this.#transactions;
    let release!: () => void;
    this.#transactions = new Promise((r) => {
      release = r;
    });
    await previous;
    try {
      const started = performance.now();
      if (!(await this.#runTransaction(range, sends, hold))) return;
      const ev = this.#o.events;
      ev?.committed?.({ partitions: 1, ms: performance.now() - started });
      const next = (BigInt(range.last) + 1n).toString();
      for (const sink of t.sinks) {
        if (outputs[sink.id])
          ev?.acknowledged?.({ sink: sink.id, topic: range.topic, partition: range.partition, next });
      }
    } finally {
      release();
    }
  }

  /**
   * One transaction for a batch: outputs and the source offsets. False when a rebalance took the partition away
   * meanwhile: the transaction is aborted and the partition's new owner reads those records again.
   */
  async #runTransaction(
    range: { topic: string; partition: number; last: string },
    sends: Array<{ topic: string; messages: KafkaMessage[] }>,
    hold: number | undefined,
  ): Promise<boolean> {
    const t = this.#o.transactional!;
    const key = tpKey(range.topic, range.partition);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#withRetry('transaction', async () => {
          if (this.#renewProducer) {
            t.producer = await t.renew().catch((e: Error) => {
              throw Object.assign(new Error(`new transactional producer: ${e.message}`), { retriable: true });
            });
            this.#renewProducer = false;
          }
          const tx = await t.producer.transaction();
          try {
            for (const s of sends) await tx.send({ topic: s.topic, messages: sendable(s.messages) });
            await tx.sendOffsets({
              consumer: this.#consumer,
              topics: [
                {
                  topic: range.topic,
                  partitions: [{ partition: range.partition, offset: (BigInt(range.last) + 1n).toString() }],
                },
              ],
            });
            await tx.commit();
          } catch (err) {
            const aborted = await tx.abort().then(
              () => true,
              () => false,
            );
            if (!aborted || isFenced(err)) {
              // The producer cannot go on: the abort failed (broker away), or the transaction outlived
              // transaction.timeout.ms and the coordinator bumped the epoch. The id is this process's own, so no
              // other instance took over: a new producer with the same id (new epoch) tries the batch again, and
              // the aborted outputs never show.
              this.#o.log.warn({ err: (err as Error).message, aborted }, 'transactional producer re-initialised');
              await t.producer.disconnect().catch(() => {});
              this.#renewProducer = true;
              throw Object.assign(new Error(`producer re-initialised: ${(err as Error).message}`), { retriable: true });
            }
            throw err;
          }
        });
        return true;
      } catch (err) {
        // The group's generation moved on (a rebalance) between fetch and commit.
        if (!/generation id is not valid|rebalance in progress|unknown member/i.test((err as Error).message)) throw err;
        const kept = hold !== undefined && this.#holds.get(key) === hold;
        this.#o.log.warn(
          { err: (err as Error).message, partition: range.partition, attempt, kept },
          kept ? 'transaction refused during a rebalance: trying again' : 'transaction aborted: the partition moved',
        );
        // Never seek here: a seek on a partition no longer ours would be applied at a later assignment, behind
        // what its other owner committed. While the partition stays ours, the same batch is tried again once the
        // rebalance is through; once it left, its new owner reads from the last committed offset.
        if (!kept || this.#stopping) return false;
        if (attempt >= 20) throw err;
        this.#o.events?.retry?.({ what: 'transaction', attempt, error: err as Error });
        await new Promise((r) => setTimeout(r, backoffDelay(this.#o.retry, attempt)));
        if (this.#holds.get(key) !== hold) return false;
      }
    }
  }

  #overLimit(): boolean {
    const limit = this.#o.maxBufferedRows ?? 200_000;
    let n = 0;
    for (const s of this.#allSinks()) n += s.buffered;
    return n >= limit;
  }

  /** One flush of every sink at a time; acknowledged batches become committable offsets. */
  #flushCycle(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    this.#flushing = (async () => {
      // State changes are sent only once the outputs of their batches are durable in every sink: a restore skips
      // the records they cover. Most belong to batches whose outputs this cycle flushes; some wait longer (a
      // ClickHouse sink holds a partition's rows until it has replayed a recorded range whole).
      const state = this.#pendingState;
      this.#pendingState = [];
      try {
        await Promise.all(
          this.#allSinks().map(async (sink) => {
            if (sink.buffered === 0) return;
            const started = performance.now();
            await this.#withRetry(`sink ${sink.id}`, () => sink.flush());
            this.#o.events?.flushed?.({ sink: sink.id, ms: performance.now() - started });
          }),
        ).catch((err) => {
          this.#pendingState = state.concat(this.#pendingState);
          throw err;
        });
        const changelog = this.#o.changelog;
        if (changelog && state.length > 0) {
          const ready: typeof state = [];
          const waiting: typeof state = [];
          const blocked = new Set<string>(); // a partition's entries go in order: after one that waits, all wait
          for (const s of state) {
            const key = tpKey(s.range.topic, s.range.partition);
            if (!blocked.has(key) && this.#tracker.settledUpTo(s.range, s.range.last, changelog.sink.id)) ready.push(s);
            else {
              blocked.add(key);
              waiting.push(s);
            }
          }
          this.#pendingState = waiting.concat(this.#pendingState);
          for (const s of ready) changelog.sink.append(s.messages, s.range);
          const started = performance.now();
          await this.#withRetry('state changelog', () => changelog.sink.flush());
          this.#o.events?.flushed?.({ sink: changelog.sink.id, ms: performance.now() - started });
        }
        await this.#commitReady();
        if (this.#paused && !this.#overLimit()) this.#setPaused(false);
      } finally {
        this.#flushing = undefined;
      }
    })();
    return this.#flushing;
  }

  async #commitReady(): Promise<void> {
    let offsets = this.#tracker.takeCommittable();
    const held = this.#o.processor.heldOffsets?.();
    if (held) {
      // A step still holds records (waiting for a table row): commit no further than the oldest of them.
      offsets = offsets.map((c) => {
        const h = held[tpKey(c.topic, c.partition)];
        return h !== undefined && BigInt(h) < BigInt(c.offset) ? { ...c, offset: String(h) } : c;
      });
    }
    if (offsets.length === 0) return;
    const started = performance.now();
    try {
      await this.#withRetry('commit', () => this.#consumer.commitOffsets(offsets));
    } catch (err) {
      // A refused commit (e.g. the group moved on) loses nothing: the records are processed again by their owner.
      this.#o.log.warn({ err: (err as Error).message, offsets }, 'commit failed; those records may be processed again');
      return;
    }
    this.#o.events?.committed?.({ partitions: offsets.length, ms: performance.now() - started });
  }

  /** Retries retriable failures with backoff until they pass, the worker stops, or the policy's limit. */
  async #withRetry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const e = err as Error & { retriable?: boolean };
        const limit = this.#o.retry.maxAttempts;
        const retriable = e.retriable === true || isTransientKafkaError(e);
        if (!retriable || this.#stopping || (limit !== undefined && attempt >= limit)) throw e;
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
      try {
        await this.#prepareAssigned(partitions);
      } catch (err) {
        this.#fail(err as Error);
        return;
      }
      const known = new Set(this.#assigned.map((tp) => tpKey(tp.topic, tp.partition)));
      this.#assigned.push(...partitions.filter((tp) => !known.has(tpKey(tp.topic, tp.partition))));
      for (const tp of partitions) {
        this.#holds.set(tpKey(tp.topic, tp.partition), ++this.#assignments);
        this.#o.processor.assignPartition?.(tp.partition, (this.#o.now ?? Date.now)());
      }
      this.#o.events?.rebalance?.({ kind: 'assign', partitions });
      this.#o.log.info({ partitions: partitions.map((p) => p.partition) }, 'partitions assigned');
      return;
    }
    // Revoked: make what we did for these partitions durable and committed before another member takes over.
    this.#o.events?.rebalance?.({ kind: 'revoke', partitions });
    if (!this.#o.transactional && !this.#failure) {
      await Promise.all(this.#inBatch);
      await this.#flushCycle().catch((e) => this.#o.log.warn({ err: e.message }, 'flush on revoke failed'));
    }
    this.#tracker.forget(partitions);
    for (const tp of partitions) {
      this.#restored.delete(tpKey(tp.topic, tp.partition));
      this.#o.changelog?.sink.forget(tp.topic, tp.partition);
      this.#replays.delete(tpKey(tp.topic, tp.partition));
      this.#next.delete(tpKey(tp.topic, tp.partition));
      this.#holds.delete(tpKey(tp.topic, tp.partition));
      this.#o.processor.releasePartition?.(tp.partition);
      for (const sink of this.#allSinks()) sink.forget?.(tp.topic, tp.partition);
    }
    const gone = new Set(partitions.map((tp) => tpKey(tp.topic, tp.partition)));
    // State of a revoked partition not sent by now must never be: its next owner writes newer state.
    this.#pendingState = this.#pendingState.filter((s) => !gone.has(tpKey(s.range.topic, s.range.partition)));
    this.#assigned = this.#assigned.filter((tp) => !gone.has(tpKey(tp.topic, tp.partition)));
    this.#o.log.info({ partitions: partitions.map((p) => p.partition) }, 'partitions revoked');
  }

  /** Sinks that keep their own positions say which ranges to skip and replay for the new partitions. */
  async #prepareAssigned(partitions: Array<{ topic: string; partition: number }>): Promise<void> {
    const changelog = this.#o.changelog;
    if (changelog && partitions.length > 0) {
      const applied = await this.#withRetry('state restore', () =>
        changelog.restore(partitions.map((tp) => tp.partition)),
      );
      for (const tp of partitions) {
        const offset = applied.get(tp.partition);
        if (offset !== undefined) this.#restored.set(tpKey(tp.topic, tp.partition), offset);
      }
    }
    const positional = this.#o.sinks.filter((s) => s.assigned);
    if (positional.length === 0 || partitions.length === 0) return;
    // Bounded: an offset fetch can go unanswered while the group settles after a member was killed.
    const committed = await this.#withRetry('committed offsets', () => this.#consumer.committed(partitions, 15_000));
    const withCommitted = partitions.map((tp) => {
      const c = committed.find((x) => x.topic === tp.topic && x.partition === tp.partition);
      const offset = c?.offset != null && BigInt(c.offset) >= 0n ? c.offset : undefined;
      return { ...tp, committed: offset };
    });
    for (const sink of positional) {
      for (const r of await sink.assigned!(withCommitted)) {
        const key = tpKey(r.topic, r.partition);
        if (!this.#replays.has(key)) this.#replays.set(key, new Map());
        this.#replays.get(key)!.set(sink.id, r);
        this.#o.log.info(
          { sink: sink.id, partition: r.partition, first: r.first, last: r.last },
          'replaying a range the sink may hold',
        );
      }
    }
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
      await Promise.all(this.#inBatch);
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
    await Promise.all(this.#allSinks().map((s) => s.close())).catch(() => {});
    if (outcome === 'timeout') {
      this.#o.log.warn({ timeoutMs: timeout }, 'shutdown timed out: uncommitted records will be processed again');
    } else if (outcome instanceof Error) {
      this.#o.log.warn({ err: outcome.message }, 'shutdown: final flush or commit failed');
    }
    if (!this.#failure) this.#done();
  }
}
