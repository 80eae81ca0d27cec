// The worker loop: one consumer-group member running one topology.
//   fetch batch → its partition's task admits what is new → decode (sync, types cached) → steps (sync)
//   → the commit strategy (acknowledged or transactional) makes it durable and commits
// Tasks (task.ts) come and go with rebalances; a liveness guard reports partitions that hold records and make no
// progress. SIGTERM drains, flushes, commits and leaves the group within a bounded time.
import type { Decoder } from '../codec/decoder.ts';
import { settledWithin } from '../deadline.ts';
import type { KafkaMessage } from '../kafka/produce.ts';
import type { WorkerEvents } from '../observe/events.ts';
import type { WorkerLog } from '../observe/log.ts';
import { backoffDelay, type RetryPolicy, retrying } from '../retry.ts';
import type { KafkaSink } from '../sinks/kafka/sink.ts';
import type { Sink } from '../sinks/sink.ts';
import { assignedTasks } from './assignment.ts';
import { AcknowledgedCommits } from './commit/acknowledged.ts';
import type { CommitContext, CommitStrategy } from './commit/strategy.ts';
import { TransactionalCommits, type TransactionalProducer } from './commit/transactional.ts';
import { stalledPartitions } from './liveness.ts';
import { DEFAULT_BOUNDS, type FetchBounds, fetchConfig } from './memory.ts';
import type { BatchProcessor } from './processor.ts';
import { batchEvent, runSegment, type SegmentSteps } from './segment.ts';
import {
  ASSIGN_PARTITIONS,
  type FetchedBatch,
  type SourceClient,
  type SourceConsumer,
  type TopicPartition,
} from './source.ts';
import type { PartitionTask } from './task.ts';
import { tpKey } from './task.ts';

export interface WorkerOptions {
  topology: string;
  client: SourceClient;
  /** Consumer properties beyond group and offsets (e.g. security). */
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
  transactional?: { producer: TransactionalProducer; sinks: KafkaSink[]; renew(): Promise<TransactionalProducer> };
  retry: RetryPolicy;
  flushIntervalMs?: number;
  /** Buffered rows across sinks above which the consumer pauses until a flush brings them down. */
  maxBufferedRows?: number;
  maxBatchSize?: number;
  /** librdkafka's prefetch bounds for this consumer, from the memory budget (memory.ts). */
  fetchBounds?: FetchBounds;
  /** Partitions handled at the same time (default 3). */
  concurrency?: number;
  shutdownTimeoutMs?: number;
  /** How often partitions are ticked when a step has timers (a saga): default 250 ms, the timers' resolution. */
  tickIntervalMs?: number;
  /** No progress for this long on a partition with records waiting turns the worker unhealthy (default 5 min). */
  stallTimeoutMs?: number;
  /**
   * The partitions of `from` that hold a record below `until` (a read): tells a stall from an end that is
   * transaction markers only. Without it such a partition counts as stalled.
   */
  recordsLeft?(topic: string, from: Map<number, bigint>, until: Map<number, bigint>): Promise<Set<number>>;
  log: WorkerLog;
  events?: WorkerEvents;
  now?: () => number;
}

export class Worker {
  readonly #o: WorkerOptions;
  readonly #consumer: SourceConsumer;
  readonly #commit: CommitStrategy;
  /** The topology's sinks and the dead letters. */
  readonly #outputs: Sink[];
  readonly #now: () => number;
  readonly #steps: SegmentSteps;
  /** The task of each assigned partition, in assignment order. */
  readonly #tasks = new Map<string, PartitionTask>();
  /** Batches being handled (one per partition at most). */
  readonly #inBatch = new Set<Promise<void>>();
  /** Per partition, the batch or tick in hand: a tick never runs beside its partition's batch. */
  readonly #lanes = new Map<string, Promise<void>>();
  #ticker: NodeJS.Timeout | undefined;
  #stopping = false;
  #paused = false;
  #failure: Error | undefined;
  #stalled: string[] = [];
  /** Per task, the end last read by the marker probe, and the probe in flight. */
  readonly #probed = new WeakMap<PartitionTask, bigint>();
  #probing: Promise<void> | undefined;
  #liveness: NodeJS.Timeout | undefined;
  #done!: (err?: Error) => void;
  readonly finished: Promise<void>;

  constructor(o: WorkerOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#steps = {
      topology: o.topology,
      decoder: o.decoder,
      processor: o.processor,
      deadLetterTopic: o.deadLetters !== undefined,
      events: o.events,
    };
    this.finished = new Promise((resolve, reject) => {
      this.#done = (err) => (err ? reject(err) : resolve());
    });
    this.#consumer = o.client.consumer(
      {
        ...o.consumerConfig,
        'group.id': o.source.group,
        'enable.auto.commit': false,
        'auto.offset.reset': o.source.start,
        'js.consumer.max.batch.size': o.maxBatchSize ?? 5000,
        // Bound what librdkafka prefetches: memory in flight stays bounded.
        ...fetchConfig(o.fetchBounds ?? DEFAULT_BOUNDS),
        // Always: a source written in transactions (an exactly-once sink, a saga) holds aborted records too, and a
        // read model must not count them. librdkafka's default is read_committed; said here as a decision.
        'isolation.level': 'read_committed',
      },
      (code, partitions) => this.#onRebalance(code, partitions),
    );
    this.#outputs = [...o.sinks, ...(o.deadLetters ? [o.deadLetters] : [])];
    for (const sink of [...this.#outputs, ...(o.changelog ? [o.changelog.sink] : [])]) {
      const what = sink === o.changelog?.sink ? 'state changelog' : `sink ${sink.id}`;
      // A sink that retries pauses the source until it is back.
      sink.retries = {
        retried: (attempt, error) => this.#retried(what, attempt, error, () => this.#setPaused(true)),
        stopped: () => this.#stopping,
      };
    }
    const context: CommitContext = {
      consumer: this.#consumer,
      sinks: o.sinks,
      deadLetters: o.deadLetters,
      outputs: this.#outputs,
      changelog: o.changelog?.sink,
      log: o.log,
      events: o.events,
      retry: (what, fn) => this.#retry(what, fn),
      tasks: () => this.#tasks.values(),
      owns: (task) => this.#tasks.get(task.key) === task,
      heldOffsets: () => o.processor.heldOffsets?.(),
      stopping: () => this.#stopping,
      pause: (paused) => this.#setPaused(paused),
      paused: () => this.#paused,
      fail: (err) => this.#fail(err),
      now: this.#now,
    };
    this.#commit = o.transactional
      ? new TransactionalCommits(context, { ...o.transactional, backoff: (a) => backoffDelay(o.retry, a) })
      : new AcknowledgedCommits(context, {
          flushIntervalMs: o.flushIntervalMs ?? 1000,
          maxBufferedRows: o.maxBufferedRows ?? DEFAULT_BOUNDS.maxBufferedRows,
        });
  }

  get assignment(): ReadonlyArray<TopicPartition> {
    return [...this.#tasks.values()].map((t) => ({ topic: t.topic, partition: t.partition }));
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** The source consumer (for progress and catch-up checks). */
  get consumer(): SourceConsumer {
    return this.#consumer;
  }

  /** Why the worker is not healthy (partitions stalled); empty when it is. */
  health(): string[] {
    return this.#stalled;
  }

  async start(): Promise<void> {
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topics: [this.#o.source.topic] });
    await this.#consumer.run({
      // Partitions are handled concurrently: while one batch waits (a sink, a transaction) others proceed.
      // Per partition, batches stay in order (the consumer never hands out two batches of one partition at once).
      batchesInHand: this.#o.concurrency ?? 3,
      eachBatch: async ({ batch }) => {
        if (this.#stopping || this.#failure) return;
        const key = tpKey(batch.topic, batch.partition);
        // After the partition's tick in hand, if any.
        const tick = this.#lanes.get(key);
        const work = tick ? tick.then(() => this.#handleBatch(batch)) : this.#handleBatch(batch);
        const settled = work.catch(() => {});
        this.#inBatch.add(settled);
        this.#lanes.set(key, settled);
        try {
          await work;
        } catch (err) {
          this.#fail(err as Error);
        } finally {
          this.#inBatch.delete(settled);
          if (this.#lanes.get(key) === settled) this.#lanes.delete(key);
        }
      },
    });
    this.#commit.start();
    const stallMs = this.#o.stallTimeoutMs ?? 300_000;
    this.#liveness = setInterval(() => this.#checkLiveness(stallMs), Math.min(5000, Math.max(10, stallMs / 4)));
    this.#liveness.unref();
    if (this.#o.processor.ticks && this.#o.processor.tick) {
      this.#ticker = setInterval(() => this.#tick(), this.#o.tickIntervalMs ?? 250);
      this.#ticker.unref();
    }
  }

  /**
   * Timers of partitions between batches: what falls due is delivered as a batch of the partition would be, at
   * the offset its state already holds (so committed with the same offset again, in its transaction).
   */
  #tick(): void {
    if (this.#stopping || this.#failure) return;
    const o = this.#o;
    for (const task of this.#tasks.values()) {
      const applied = task.applied;
      if (applied === undefined || this.#lanes.has(task.key)) continue;
      const result = o.processor.tick!(this.#now(), task.partition);
      const outputs: Record<string, unknown[]> = {};
      for (const [id, rows] of Object.entries(result.sinks)) if (rows.length > 0) outputs[id] = rows;
      const last = applied.toString();
      const state = o.changelog?.messages(task.partition, last);
      if (Object.keys(outputs).length === 0 && !state?.length) continue;
      const range = { topic: task.topic, partition: task.partition, first: last, last };
      const work = this.#commit.deliver({ task, range, outputs, deadLetters: [], state }).then(() => {
        this.#commit.afterBatch();
      });
      const settled = work.catch((err: Error) => this.#fail(err));
      this.#lanes.set(task.key, settled);
      this.#inBatch.add(settled);
      void settled.finally(() => {
        this.#lanes.delete(task.key);
        this.#inBatch.delete(settled);
      });
    }
  }

  async #handleBatch(batch: FetchedBatch): Promise<void> {
    const o = this.#o;
    // A macrotask turn per batch: when the client hands out queued batches back to back (a backlog), everything
    // else would wait for the end of it: the flush timer (so commits), /healthz and /metrics.
    await new Promise((r) => setImmediate(r));
    if (this.#stopping || this.#failure) return;
    const task = this.#tasks.get(tpKey(batch.topic, batch.partition));
    // A partition that is not (or no longer) ours: its owner reads these records.
    if (!task) return;
    const admitted = task.admit(batch.messages, batch.highWatermark, this.#now());
    if (admitted.kind === 'restored') return this.#commit.skipped(task, admitted.last);
    if (admitted.kind === 'seen') return;
    const { segments } = admitted;
    const records = segments.reduce((n, s) => n + s.messages.length, 0);
    const values =
      segments.length === 1
        ? segments[0]!.messages.map((m) => m.value)
        : segments.flatMap((s) => s.messages.map((m) => m.value));
    // The registry client retries its lookups itself (under the topology's policy): a throw here is final.
    await o.decoder.prepare(values);
    const outputs: Record<string, unknown[]> = {};
    for (const segment of segments) {
      const seg = runSegment(this.#steps, task, segment, this.#now());
      await this.#commit.deliver({ task, ...seg, state: o.changelog?.messages(task.partition, seg.range.last) });
      for (const [id, rows] of Object.entries(seg.outputs)) {
        const list = outputs[id];
        if (list) list.push(...rows);
        else outputs[id] = rows;
      }
    }
    if (o.events?.batch) o.events.batch(batchEvent(o.events, batch, segments, records, outputs));
    this.#commit.afterBatch();
  }

  /** The worker's own calls (consumer, state restore), retried under the topology's policy. */
  #retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return retrying(this.#o.retry, fn, {
      stopped: () => this.#stopping,
      onRetry: (error, attempt) => this.#retried(what, attempt, error),
    });
  }

  #retried(what: string, attempt: number, error: Error, then?: () => void): void {
    this.#o.events?.retry?.({ what, attempt, error });
    this.#o.log.warn({ what, attempt, err: error.message }, `${what} failed, retrying`);
    then?.();
  }

  #setPaused(paused: boolean): void {
    if (paused === this.#paused || this.#tasks.size === 0) return;
    this.#paused = paused;
    const topics = [{ topic: this.#o.source.topic }];
    if (paused) this.#consumer.pause(topics);
    else this.#consumer.resume(topics);
    this.#o.events?.paused?.(paused);
    this.#o.log.info({ paused }, paused ? 'consumer paused: sinks are behind' : 'consumer resumed');
  }

  async #onRebalance(code: number, partitions: TopicPartition[]): Promise<void> {
    if (code === ASSIGN_PARTITIONS) {
      let tasks: PartitionTask[];
      try {
        tasks = await assignedTasks(partitions, {
          now: this.#now(),
          consumer: this.#consumer,
          restore: this.#o.changelog?.restore,
          sinks: this.#o.sinks,
          retry: (what, fn) => this.#retry(what, fn),
          log: this.#o.log,
        });
      } catch (err) {
        this.#fail(err as Error);
        return;
      }
      for (const task of tasks) {
        this.#tasks.set(task.key, task);
        this.#o.processor.assignPartition?.(task.partition, this.#now());
      }
      this.#o.events?.rebalance?.({ kind: 'assign', partitions });
      this.#o.log.info({ partitions: partitions.map((p) => p.partition) }, 'partitions assigned');
      return;
    }
    // Revoked: make what we did for these partitions durable and committed before another member takes over.
    this.#o.events?.rebalance?.({ kind: 'revoke', partitions });
    const tasks = partitions.flatMap((tp) => this.#tasks.get(tpKey(tp.topic, tp.partition)) ?? []);
    if (!this.#failure) await this.#commit.revoking(tasks, () => Promise.all(this.#inBatch).then(() => {}));
    this.#commit.revoked(tasks);
    for (const tp of partitions) {
      this.#tasks.delete(tpKey(tp.topic, tp.partition));
      this.#o.processor.releasePartition?.(tp.partition);
      for (const sink of this.#outputs) sink.forget?.(tp.topic, tp.partition);
    }
    // librdkafka keeps a partition's pause past its revoke: one paused here and given back later, after the worker
    // resumed, was never fetched again (rebalance-commits: a partition stuck at 5,000 of 118,884). While it is ours
    // still (the revoke applies when this returns), it leaves unpaused.
    if (this.#paused && partitions.length > 0) {
      try {
        this.#consumer.resume([{ topic: this.#o.source.topic, partitions: partitions.map((p) => p.partition) }]);
      } catch (err) {
        this.#o.log.warn({ err: (err as Error).message }, 'resuming revoked partitions failed');
      }
    }
    this.#o.log.info({ partitions: partitions.map((p) => p.partition) }, 'partitions revoked');
  }

  #checkLiveness(ms: number): void {
    const candidates = [...this.#tasks.values()];
    const probe = this.#markerProbe(candidates.filter((t) => t.hasWork && this.#now() - t.lastProgress >= ms));
    const stalled = stalledPartitions(
      candidates.filter((t) => !probe.has(t)),
      this.#now(),
      ms,
    );
    if (!stalled) {
      if (this.#stalled.length > 0) this.#o.log.info({}, 'progress again: healthy');
      this.#stalled = [];
      return;
    }
    if (this.#stalled.length === 0) {
      this.#o.log.error(
        { partitions: stalled.partitions, paused: this.#paused, ms },
        `worker stalled: ${stalled.reason}`,
      );
      this.#o.events?.stalled?.({ partitions: stalled.partitions, ms });
    }
    this.#stalled = [stalled.reason];
  }

  /**
   * Of the partitions about to count as stalled, those whose only work is an end beyond the commit are read first:
   * the ones found to end in markers only are settled, not stalled. Returns the tasks whose read is not back yet.
   */
  #markerProbe(tasks: PartitionTask[]): Set<PartitionTask> {
    const recordsLeft = this.#o.recordsLeft;
    const asked: Array<{ t: PartitionTask; end: bigint; from: bigint }> = [];
    if (!recordsLeft) return new Set();
    for (const t of tasks) {
      const end = t.endBeyondCommit;
      if (end !== undefined && this.#probed.get(t) !== end) asked.push({ t, end, from: t.committed! });
    }
    const open = new Set(asked.map((a) => a.t));
    if (asked.length === 0 || this.#probing) return open;
    const topic = asked[0]!.t.topic;
    this.#probing = recordsLeft(
      topic,
      new Map(asked.map((a) => [a.t.partition, a.from])),
      new Map(asked.map((a) => [a.t.partition, a.end])),
    )
      .then((withRecords) => {
        for (const a of asked) {
          this.#probed.set(a.t, a.end);
          if (!withRecords.has(a.t.partition)) a.t.endIsMarkers(a.end);
        }
      })
      .catch((err) => {
        // Unread, they count as stalled: a guard that cannot look must not stay silent.
        for (const a of asked) this.#probed.set(a.t, a.end);
        this.#o.log.warn({ err: (err as Error).message }, 'reading the end of a stalled partition failed');
      })
      .finally(() => {
        this.#probing = undefined;
      });
    return open;
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
    this.#commit.stop();
    clearInterval(this.#liveness);
    clearInterval(this.#ticker);
    const timeout = this.#o.shutdownTimeoutMs ?? 20_000;
    // The group is left whatever happens before: a consumer left connected keeps heartbeating and holds its
    // partitions, with nobody reading them, for as long as its process lives (a stage stopped beside a failed one).
    let left: Promise<void> | undefined;
    const leave = () => {
      left ??= this.#consumer.disconnect().catch(() => {});
      return left;
    };
    const drain = async () => {
      try {
        await Promise.all(this.#inBatch);
        if (!this.#failure) await this.#commit.drain();
      } finally {
        await leave();
      }
    };
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      drain().then(() => 'drained' as const),
      new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), timeout);
      }),
    ]).catch((e: Error) => e);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      await settledWithin(leave(), 5000);
    }
    await Promise.all(this.#outputs.map((s) => s.close())).catch(() => {});
    if (outcome === 'timeout') {
      this.#o.log.warn({ timeoutMs: timeout }, 'shutdown timed out: uncommitted records will be processed again');
    } else if (outcome instanceof Error) {
      this.#o.log.warn({ err: outcome.message }, 'shutdown: final flush or commit failed');
    }
    // A failure during the stop (a flush failing) called stop() again, which waits for this: finished settles here.
    this.#done(this.#failure);
  }
}
