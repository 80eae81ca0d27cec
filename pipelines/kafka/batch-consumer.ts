// The worker's source consumer on the client's librdkafka interface (its `KafkaConsumer`), not on its KafkaJS
// layer: one consume loop takes up to a batch of records at a time and hands them out per partition, in order
// within a partition and concurrently across partitions. Why: at the same rate and CPU, the KafkaJS layer's message
// cache and per-message objects held about 440 MB more (test/bench/results/2026-12-02-ladder.md, L0 against L0
// low-level); this loop keeps at most `batchesInHand` batches of records in hand, and librdkafka's prefetch is
// bounded by the worker's `queued.max.messages.kbytes`.
import type { EventEmitter } from 'node:events';
import rdkafka from '@confluentinc/kafka-javascript';
import { PipelinesError } from '../errors.ts';
import type { Headers } from './headers.ts';

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface CommitOffset extends TopicPartition {
  /** The next offset to read (last processed + 1), as Kafka expects. */
  offset: string;
}

export interface FetchedMessage {
  offset: string;
  key: Buffer | null | undefined;
  value: Buffer | null;
  /** Kafka record timestamp (ms, as a string). */
  timestamp: string;
  headers?: Headers | undefined;
}

export interface FetchedBatch {
  topic: string;
  partition: number;
  highWatermark: string;
  messages: FetchedMessage[];
}

/** librdkafka's rebalance codes, as the consumer's rebalance callback gets them. */
export const ASSIGN_PARTITIONS = -175;
export const REVOKE_PARTITIONS = -174;

/** Called for every rebalance; the consumer applies the change once the returned promise settles. */
export type RebalanceListener = (code: number, partitions: TopicPartition[]) => Promise<void>;

/** The calls of librdkafka's consumer used here that the client's type declarations leave out. */
interface Native extends rdkafka.KafkaConsumer {
  incrementalAssign(partitions: TopicPartition[]): void;
  incrementalUnassign(partitions: TopicPartition[]): void;
  setDefaultIsTimeoutOnlyForFirstMessage(only: boolean): void;
}

export interface BatchConsumerOptions {
  /** librdkafka consumer properties; `js.consumer.max.batch.size` (the KafkaJS layer's name) sets the batch size. */
  config: Record<string, unknown>;
  onRebalance: RebalanceListener;
  /** Errors the client reports without failing a call (a broker down, a connection refused). */
  onError(err: Error): void;
}

/** How long one consume waits for its first record; what a record arriving alone can wait for it. */
const CONSUME_WAIT_MS = 100;
/** How long leaving waits for the revoke of what the consumer holds (and its commit) before it closes anyway. */
const LEAVE_WAIT_MS = 10_000;

export class BatchConsumer {
  readonly #native: Native;
  readonly #maxBatch: number;
  #inFlightLimit = 3;
  readonly #o: BatchConsumerOptions;
  readonly #assigned = new Map<string, TopicPartition>();
  readonly #pausedTopics = new Set<string>();
  /** Per partition, the chain of its batches (order within a partition), and its assignment's epoch. */
  readonly #lanes = new Map<string, Promise<void>>();
  readonly #epochs = new Map<string, number>();
  #rebalancing: Promise<void> = Promise.resolve();
  #rebalancesOpen = 0;
  #inFlight = 0;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #stopping = false;

  constructor(o: BatchConsumerOptions) {
    this.#o = o;
    const { 'js.consumer.max.batch.size': maxBatch, ...config } = o.config;
    this.#maxBatch = Number(maxBatch ?? 5000);
    this.#native = new rdkafka.KafkaConsumer({
      ...config,
      // The rebalance handling below is incremental: an eager assignor refuses incremental assigns, and a
      // consumer given one was assigned nothing, without a word but a logged error.
      'partition.assignment.strategy': 'cooperative-sticky',
      offset_commit_cb: true,
      rebalance_cb: (err: { code: number }, assignment: TopicPartition[]) => this.#rebalanced(err.code, assignment),
      // No topic configuration: one given (even empty) replaces the defaults, auto.offset.reset among them.
    } as never) as Native;
    this.#native.on('event.error', (err) => o.onError(err as unknown as Error));
  }

  /** The client's own consumer: a transaction's sendOffsets asks its producer for it. */
  _getInternalClient(): rdkafka.KafkaConsumer {
    return this.#native;
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => this.#native.connect({}, (err) => (err ? reject(err) : resolve())));
  }

  async subscribe(o: { topics: string[] }): Promise<void> {
    this.#native.subscribe(o.topics);
  }

  /** Starts the consume loop; `eachBatch` gets a partition's batches one at a time, in offset order. */
  async run(o: {
    /** How many batches may be in hand (processing, or waiting for their partition's last) before reading waits. */
    batchesInHand: number;
    eachBatch(payload: { batch: FetchedBatch }): Promise<void>;
  }): Promise<void> {
    this.#inFlightLimit = Math.max(1, o.batchesInHand);
    this.#native.setDefaultConsumeTimeout(CONSUME_WAIT_MS);
    // Once a first record came, the rest of a batch is what librdkafka already holds: no wait per record.
    this.#native.setDefaultIsTimeoutOnlyForFirstMessage(true);
    this.#loop = this.#consumeLoop(o.eachBatch);
  }

  /** Without `partitions`, the topic's state: every partition assigned now, and those assigned later. */
  pause(topics: Array<{ topic: string; partitions?: number[] }>): void {
    this.#setPaused(topics, true);
  }

  resume(topics: Array<{ topic: string; partitions?: number[] }>): void {
    this.#setPaused(topics, false);
  }

  #setPaused(topics: Array<{ topic: string; partitions?: number[] }>, paused: boolean): void {
    const some: TopicPartition[] = [];
    const whole: Array<{ topic: string }> = [];
    for (const t of topics) {
      if (t.partitions) for (const partition of t.partitions) some.push({ topic: t.topic, partition });
      else {
        whole.push(t);
        if (paused) this.#pausedTopics.add(t.topic);
        else this.#pausedTopics.delete(t.topic);
      }
    }
    const partitions = [...some, ...this.#partitionsOf(whole)];
    if (partitions.length === 0) return;
    if (paused) this.#native.pause(partitions);
    else this.#native.resume(partitions);
  }

  /** Resolves once the broker took the commit (see confirmedCommit). */
  commitOffsets(offsets: CommitOffset[]): Promise<void> {
    return confirmedCommit(this.#native, offsets, () =>
      this.#native.commit(offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: Number(o.offset) }))),
    );
  }

  committed(partitions: TopicPartition[], timeoutMs = 15_000): Promise<Array<TopicPartition & { offset: string }>> {
    return new Promise((resolve, reject) =>
      this.#native.committed(
        partitions.map(({ topic, partition }) => ({ topic, partition })),
        timeoutMs,
        (err, committed) =>
          err
            ? reject(err)
            : resolve(
                committed.map((c) => ({
                  topic: c.topic,
                  partition: c.partition,
                  // Nothing committed: the client leaves the offset out; librdkafka's OFFSET_INVALID stands for it.
                  offset: typeof c.offset === 'number' ? String(c.offset) : '-1001',
                })),
              ),
      ),
    );
  }

  /** Stops reading, lets the batches in hand finish, leaves the group (the revoke goes through the listener). */
  async disconnect(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#wake?.();
    await this.#loop;
    await Promise.all(this.#lanes.values());
    if (!this.#native.isConnected()) return;
    // The revoke, and the broker's answer to the commit its listener makes, come with a poll: polled for here
    // (records dropped), so that the listener commits while the consumer can still commit, not during the close.
    this.#native.unsubscribe();
    const until = Date.now() + LEAVE_WAIT_MS;
    while ((this.#assigned.size > 0 || this.#rebalancesOpen > 0) && Date.now() < until) {
      await new Promise<void>((resolve) => this.#native.consume(this.#maxBatch, () => resolve()));
    }
    await new Promise<void>((resolve, reject) => this.#native.disconnect((err) => (err ? reject(err) : resolve())));
  }

  async #consumeLoop(eachBatch: (payload: { batch: FetchedBatch }) => Promise<void>): Promise<void> {
    while (!this.#stopping) {
      if (this.#inFlight >= this.#inFlightLimit) {
        await new Promise<void>((r) => {
          this.#wake = r;
        });
        this.#wake = undefined;
        continue;
      }
      let messages: rdkafka.Message[];
      try {
        messages = await new Promise<rdkafka.Message[]>((resolve, reject) =>
          this.#native.consume(this.#maxBatch, (err, m) => (err ? reject(err) : resolve(m))),
        );
      } catch (err) {
        this.#o.onError(err as Error);
        await new Promise((r) => setTimeout(r, CONSUME_WAIT_MS));
        continue;
      }
      if (messages.length > 0) this.#dispatch(messages, eachBatch);
    }
  }

  /** Splits what one consume returned into a batch per partition, each queued behind its partition's last. */
  #dispatch(messages: rdkafka.Message[], eachBatch: (payload: { batch: FetchedBatch }) => Promise<void>): void {
    const byPartition = new Map<string, rdkafka.Message[]>();
    for (const m of messages) {
      const key = `${m.topic}\0${m.partition}`;
      const list = byPartition.get(key);
      if (list) list.push(m);
      else byPartition.set(key, [m]);
    }
    for (const [key, list] of byPartition) {
      // Read before a revoke that is under way: the next owner reads these.
      if (!this.#assigned.has(key)) continue;
      const batch = this.#batchOf(list);
      const epoch = this.#epochs.get(key) ?? 0;
      // A batch read before its partition's revoke is not handed out after it began (its next owner reads it).
      const handle = () => ((this.#epochs.get(key) ?? 0) === epoch ? eachBatch({ batch }) : undefined);
      const previous = this.#lanes.get(key);
      this.#inFlight++;
      const lane: Promise<void> = (previous ? previous.then(handle) : Promise.resolve().then(handle))
        .catch((err: Error) => this.#o.onError(err))
        .finally(() => {
          this.#inFlight--;
          if (this.#lanes.get(key) === lane) this.#lanes.delete(key);
          this.#wake?.();
        });
      this.#lanes.set(key, lane);
    }
  }

  #batchOf(list: rdkafka.Message[]): FetchedBatch {
    const { topic, partition } = list[0]!;
    let highWatermark = '-1001';
    try {
      const { highOffset } = this.#native.getWatermarkOffsets(topic, partition);
      if (Number.isInteger(highOffset) && highOffset >= 0) highWatermark = String(highOffset);
    } catch {
      // Not known yet: the batch stands without it.
    }
    const messages: FetchedMessage[] = new Array(list.length);
    for (let i = 0; i < list.length; i++) {
      const m = list[i]!;
      messages[i] = {
        offset: String(m.offset),
        key: typeof m.key === 'string' ? Buffer.from(m.key) : m.key,
        value: m.value,
        timestamp: m.timestamp ? String(m.timestamp) : '',
        headers: m.headers ? headersOf(m.headers) : undefined,
      };
    }
    return { topic, partition, highWatermark, messages };
  }

  /**
   * librdkafka's rebalance callback: the listener runs first (a revoke commits what was done), then the change is
   * applied. Rebalances are chained, so that an assignment is never applied before the revoke that came before it.
   */
  #rebalanced(code: number, assignment: TopicPartition[]): void {
    const partitions = assignment.map(({ topic, partition }) => ({ topic, partition }));
    // From the moment a revoke is known, no batch of those partitions starts: the listener commits what was
    // handed out, and a batch started after that would be processed again by the next owner.
    if (code === REVOKE_PARTITIONS)
      for (const tp of partitions) {
        const key = `${tp.topic}\0${tp.partition}`;
        this.#assigned.delete(key);
        this.#epochs.set(key, (this.#epochs.get(key) ?? 0) + 1);
      }
    this.#rebalancesOpen++;
    this.#rebalancing = this.#rebalancing
      .then(() => this.#o.onRebalance(code, partitions))
      .catch((err: Error) => this.#o.onError(err))
      .then(() => this.#apply(code, partitions))
      .finally(() => {
        this.#rebalancesOpen--;
      });
  }

  #apply(code: number, partitions: TopicPartition[]): void {
    try {
      if (code === ASSIGN_PARTITIONS) {
        for (const tp of partitions) this.#assigned.set(`${tp.topic}\0${tp.partition}`, tp);
        this.#native.incrementalAssign(partitions);
        // librdkafka keeps a partition's pause through its revoke: one paused by an earlier owner would come back
        // paused for good. Each assigned partition takes its topic's state now.
        const paused = partitions.filter((tp) => this.#pausedTopics.has(tp.topic));
        const running = partitions.filter((tp) => !this.#pausedTopics.has(tp.topic));
        if (paused.length > 0) this.#native.pause(paused);
        if (running.length > 0) this.#native.resume(running);
      } else if (code === REVOKE_PARTITIONS) {
        this.#native.incrementalUnassign(partitions);
      } else {
        this.#o.onError(new Error(`unexpected rebalance event ${code}`));
      }
    } catch (err) {
      // Not connected any more (the consumer is closing): nothing to apply.
      if (this.#native.isConnected()) this.#o.onError(err as Error);
    }
  }

  #partitionsOf(topics: Array<{ topic: string }>): TopicPartition[] {
    const names = new Set(topics.map((t) => t.topic));
    return [...this.#assigned.values()].filter((tp) => names.has(tp.topic));
  }
}

/** librdkafka's headers (a list of one-key objects) as the worker reads them; a repeated key becomes a list. */
function headersOf(list: rdkafka.MessageHeader[]): Headers {
  const headers: Headers = {};
  for (const header of list) {
    for (const [key, value] of Object.entries(header)) {
      const had = headers[key];
      if (had === undefined) headers[key] = value;
      else if (Array.isArray(had)) had.push(value);
      else headers[key] = [had, value];
    }
  }
  return headers;
}

/** How long a commit may go unanswered by the broker before the worker counts it as not made. */
const COMMIT_CONFIRM_MS = 15_000;

/**
 * A commit that resolves once the broker took it. librdkafka's commit only queues the commit and returns: a commit
 * the group then refuses (REBALANCE_IN_PROGRESS while it waits for a member that was killed) was lost without a
 * word, and the worker, taking it as made, never committed that partition again while no new record came (the
 * commit stall of issue 12). The broker's answer comes as the client's offset-commit event: this waits for the one
 * that carries these offsets, and rejects with its error.
 */
function confirmedCommit(events: EventEmitter, offsets: CommitOffset[], enqueue: () => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      events.off('offset.commit', onCommit);
      if (err) reject(err);
      else resolve();
    };
    const onCommit = (err: unknown, committed: Array<{ topic: string; partition: number; offset: number }>) => {
      const ours = offsets.every((o) =>
        committed?.some((c) => c.topic === o.topic && c.partition === o.partition && String(c.offset) === o.offset),
      );
      if (!ours) return;
      if (!err) return done();
      const code = typeof err === 'number' ? err : (err as { code?: number }).code;
      const e = err instanceof Error ? err : new Error(`the broker refused the commit (librdkafka error ${code})`);
      done(Object.assign(e, { code }));
    };
    const timer = setTimeout(
      () =>
        done(
          new PipelinesError('KAFKA_COMMIT_UNCONFIRMED', `no answer to a commit in ${COMMIT_CONFIRM_MS / 1000} s`, {
            retriable: false,
          }),
        ),
      COMMIT_CONFIRM_MS,
    );
    events.on('offset.commit', onCommit);
    try {
      enqueue();
    } catch (err) {
      done(err as Error);
    }
  });
}
