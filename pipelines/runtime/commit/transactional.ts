// Transactional commits (exactly-once Kafka to Kafka): each batch's outputs, dead letters, state changes and
// source offset go in one transaction, one transaction at a time on the one producer. A transaction refused
// because the group moved on is tried again while the partition stays ours, and dropped once it left: its new
// owner reads those records again from the last committed offset.

import { PipelinesError } from '../../errors.ts';
import { isFencedError, isGroupMovedError, isMemberLostError } from '../../kafka/errors.ts';
import type { KafkaMessage } from '../../kafka/produce.ts';
import type { KafkaSink } from '../../sinks/kafka/sink.ts';
import type { SourceRange } from '../../sinks/sink.ts';
import type { SourceConsumer } from '../source.ts';
import type { PartitionTask } from '../task.ts';
import type { CommitContext, CommitStrategy, Delivery } from './strategy.ts';

export interface Transaction {
  send(o: { topic: string; messages: readonly KafkaMessage[] }): Promise<unknown>;
  sendOffsets(o: {
    consumer: SourceConsumer;
    topics: Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>;
  }): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export interface TransactionalProducer {
  transaction(): Promise<Transaction>;
  disconnect(): Promise<void>;
}

export interface TransactionalOptions {
  producer: TransactionalProducer;
  /** The topology's Kafka sinks: drained into each transaction, never flushed. */
  sinks: KafkaSink[];
  /** A fenced or broken producer is replaced by a new one with the same transactional id (a new epoch). */
  renew(): Promise<TransactionalProducer>;
  /** Delay before trying a transaction again during a rebalance. */
  backoff(attempt: number): number;
}

/** Tries of one batch's transaction while a rebalance goes on, before the worker gives up. */
const REBALANCE_TRIES = 20;

export class TransactionalCommits implements CommitStrategy {
  readonly #c: CommitContext;
  readonly #o: TransactionalOptions;
  #producer: TransactionalProducer;
  /** The producer failed beyond an abort: the next attempt starts with a new one. */
  #renewProducer = false;
  /** The transaction in progress: the next one starts when it is done. */
  #queue: Promise<void> = Promise.resolve();

  constructor(c: CommitContext, o: TransactionalOptions) {
    this.#c = c;
    this.#o = o;
    this.#producer = o.producer;
  }

  start(): void {}

  async deliver(d: Delivery): Promise<void> {
    const c = this.#c;
    for (const sink of this.#o.sinks) if (d.outputs[sink.id]) sink.append(d.outputs[sink.id]!, d.range);
    if (d.deadLetters.length > 0) c.deadLetters!.append(d.deadLetters, d.range);
    const sends = [...this.#o.sinks, ...(c.deadLetters ? [c.deadLetters] : [])]
      .map((s) => ({ topic: s.topic, messages: s.drain() }))
      .filter((s) => s.messages.length > 0);
    if (d.state && c.changelog) sends.push({ topic: c.changelog.topic, messages: d.state });
    // One transaction at a time on the one producer: batches of other partitions wait for their turn.
    const previous = this.#queue;
    let release!: () => void;
    this.#queue = new Promise((r) => {
      release = r;
    });
    await previous;
    try {
      const started = performance.now();
      if (!(await this.#run(d.task, d.range, sends))) return;
      c.events?.committed?.({ partitions: 1, ms: performance.now() - started });
      const next = BigInt(d.range.last) + 1n;
      d.task.committedAt(next, c.now());
      for (const sink of this.#o.sinks) {
        if (d.outputs[sink.id])
          c.events?.acknowledged?.({
            sink: sink.id,
            topic: d.range.topic,
            partition: d.range.partition,
            next: String(next),
          });
      }
    } finally {
      release();
    }
  }

  // Skipped records are committed with the partition's next transaction.
  skipped(): void {}

  afterBatch(): void {}

  // A batch in hand is not awaited: its transaction may wait for this very rebalance to end.
  async revoking(): Promise<void> {}

  revoked(): void {}

  async drain(): Promise<void> {
    await this.#queue;
  }

  stop(): void {}

  /** One transaction for a batch: false when a rebalance took the partition away meanwhile (it is aborted). */
  async #run(task: PartitionTask, range: SourceRange, sends: Array<{ topic: string; messages: KafkaMessage[] }>) {
    const c = this.#c;
    for (let attempt = 1; ; attempt++) {
      try {
        await c.retry('transaction', () => this.#once(range, sends));
        return true;
      } catch (err) {
        if (isMemberLostError(err)) {
          // Waiting here would wait for ever: the client hands the revoke over, and rejoins, only once this batch
          // returns. Nor can the worker go on: its steps' state in memory is ahead of what was committed (the
          // transaction was aborted), and a restart is what restores it from the changelog.
          throw new PipelinesError(
            'KAFKA_MEMBER_LOST',
            'the consumer group dropped this worker while a transaction was in flight (the broker was away longer ' +
              'than the session timeout); nothing is lost: restart the worker, which restores its state from the ' +
              'changelog and reads on from the last commit',
            { cause: err },
          );
        }
        if (!isGroupMovedError(err)) throw err;
        const kept = c.owns(task);
        c.log.warn(
          { err: (err as Error).message, partition: range.partition, attempt, kept },
          kept ? 'transaction refused during a rebalance: trying again' : 'transaction aborted: the partition moved',
        );
        // Never seek here: a seek on a partition no longer ours would be applied at a later assignment, behind
        // what its other owner committed.
        if (!kept || c.stopping()) return false;
        if (attempt >= REBALANCE_TRIES) throw err;
        c.events?.retry?.({ what: 'transaction', attempt, error: err as Error });
        await new Promise((r) => setTimeout(r, this.#o.backoff(attempt)));
        if (!c.owns(task)) return false;
      }
    }
  }

  async #once(range: SourceRange, sends: Array<{ topic: string; messages: KafkaMessage[] }>): Promise<void> {
    if (this.#renewProducer) {
      this.#producer = await this.#o.renew().catch((e: Error) => {
        throw new PipelinesError('KAFKA_PRODUCER', `new transactional producer: ${e.message}`, {
          retriable: true,
          cause: e,
        });
      });
      this.#renewProducer = false;
    }
    const tx = await this.#producer.transaction();
    try {
      for (const s of sends) await tx.send({ topic: s.topic, messages: s.messages });
      const offset = (BigInt(range.last) + 1n).toString();
      await tx.sendOffsets({
        consumer: this.#c.consumer,
        topics: [{ topic: range.topic, partitions: [{ partition: range.partition, offset }] }],
      });
      await tx.commit();
    } catch (err) {
      const aborted = await tx.abort().then(
        () => true,
        () => false,
      );
      if (!aborted || isFencedError(err)) {
        // The producer cannot go on: the abort failed (broker away), or the transaction outlived
        // transaction.timeout.ms and the coordinator bumped the epoch. The id is this process's own, so no other
        // instance took over: a new producer with the same id (new epoch) tries the batch again, and the aborted
        // outputs never show.
        this.#c.log.warn({ err: (err as Error).message, aborted }, 'transactional producer re-initialised');
        await this.#producer.disconnect().catch(() => {});
        this.#renewProducer = true;
        throw new PipelinesError('KAFKA_PRODUCER', `producer re-initialised: ${(err as Error).message}`, {
          retriable: true,
          cause: err,
        });
      }
      throw err;
    }
  }
}
