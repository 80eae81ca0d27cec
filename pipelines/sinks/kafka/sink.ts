// Kafka sink: keyed messages (order per key), idempotent producer, one batched send awaited per flush.
// The dead-letter topic is a Kafka sink too, with messages already encoded.
import type { KafkaMessage, MessageSender } from '../../kafka/produce.ts';
import { defaultRetry, type RetryPolicy, retrying } from '../../retry.ts';
import { type Ack, type Sink, type SinkRetries, type SourceRange, unsupervised } from '../sink.ts';

export interface KafkaSinkOptions {
  id: string;
  topic: string;
  producer: MessageSender;
  /** Turns a row into a message; runs in append (synchronous). */
  encode: (row: unknown) => KafkaMessage;
  /** Rows above which the worker pauses the consumer until a flush (default 50,000). */
  maxBuffered?: number;
  /** Retries of a send (default: the topology default, until it works or the worker stops). */
  retry?: RetryPolicy;
}

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export class KafkaSink implements Sink {
  readonly id: string;
  readonly topic: string;
  onAck: (ack: Ack) => void = () => {};
  retries: SinkRetries = unsupervised;
  readonly #retry: RetryPolicy;
  #messages: KafkaMessage[] = [];
  /** Messages of the flush under way, held until delivered. */
  #inFlight = 0;
  /** Per source partition, the last source offset whose output is in #messages. */
  #upTo = new Map<string, { topic: string; partition: number; last: bigint }>();
  readonly #producer: MessageSender;
  readonly #encode: (row: unknown) => KafkaMessage;

  constructor(o: KafkaSinkOptions) {
    this.id = o.id;
    this.topic = o.topic;
    this.#producer = o.producer;
    this.#encode = o.encode;
    this.#retry = o.retry ?? defaultRetry;
  }

  append(rows: readonly unknown[], range: SourceRange): void {
    for (const row of rows) this.#messages.push(this.#encode(row));
    this.#upTo.set(tpKey(range.topic, range.partition), {
      topic: range.topic,
      partition: range.partition,
      last: BigInt(range.last),
    });
  }

  /**
   * What the sink holds, the flush under way included (as the ClickHouse writer counts): the source pauses on it,
   * so a stage holds at most its maxBufferedRows, not those and a flush's worth more.
   */
  get buffered(): number {
    return this.#messages.length + this.#inFlight;
  }

  /** Sends what is buffered, retrying; when it gives up the messages go back in front of the buffer, order kept. */
  async flush(): Promise<void> {
    if (this.#messages.length === 0) return;
    const messages = this.#messages;
    const upTo = this.#upTo;
    this.#messages = [];
    this.#upTo = new Map();
    this.#inFlight = messages.length;
    try {
      await retrying(this.#retry, () => this.#producer.send({ topic: this.topic, messages }), {
        onRetry: (err, attempt) => this.retries.retried(attempt, err),
        stopped: () => this.retries.stopped(),
      });
    } catch (err) {
      this.#messages = messages.concat(this.#messages);
      for (const [k, v] of upTo) if (!this.#upTo.has(k)) this.#upTo.set(k, v);
      throw err;
    } finally {
      this.#inFlight = 0;
    }
    for (const v of upTo.values())
      this.onAck({ topic: v.topic, partition: v.partition, next: (v.last + 1n).toString() });
  }

  /** Messages to send inside a transaction (exactly-once mode); the buffer is emptied. */
  drain(): KafkaMessage[] {
    const out = this.#messages;
    this.#messages = [];
    this.#upTo = new Map();
    return out;
  }

  forget(topic: string, partition: number): void {
    // Messages already encoded stay in order in the one buffer; only the acknowledgement is dropped, so the
    // revoked partition's offsets are never committed by this member (the next owner redoes them).
    this.#upTo.delete(tpKey(topic, partition));
  }

  async close(): Promise<void> {}
}
