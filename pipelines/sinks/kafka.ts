// Kafka sink: keyed messages (order per key), idempotent producer, one batched send awaited per flush.
// The dead-letter topic is a Kafka sink too, with messages already encoded.
import type { KafkaJS } from '@confluentinc/kafka-javascript';
import type { Sink } from './sink.ts';

export interface KafkaMessage {
  key: Buffer | string | null;
  value: Buffer | null;
  headers?: Record<string, string | Buffer>;
  partition?: number;
}

export interface KafkaSinkOptions {
  id: string;
  topic: string;
  producer: KafkaJS.Producer;
  /** Turns a row into a message; runs in append (synchronous). */
  encode: (row: unknown) => KafkaMessage;
  /** Rows that make a flush worthwhile (default 10,000). */
  flushRows?: number;
}

export class KafkaSink implements Sink {
  readonly id: string;
  readonly topic: string;
  #messages: KafkaMessage[] = [];
  #lastSeq: number | undefined;
  readonly #producer: KafkaJS.Producer;
  readonly #encode: (row: unknown) => KafkaMessage;
  readonly #flushRows: number;

  constructor(o: KafkaSinkOptions) {
    this.id = o.id;
    this.topic = o.topic;
    this.#producer = o.producer;
    this.#encode = o.encode;
    this.#flushRows = o.flushRows ?? 10_000;
  }

  append(rows: readonly unknown[], seq: number): void {
    for (const row of rows) this.#messages.push(this.#encode(row));
    this.#lastSeq = seq;
  }

  get buffered(): number {
    return this.#messages.length;
  }

  get full(): boolean {
    return this.#messages.length >= this.#flushRows;
  }

  /** Sends what is buffered; on failure the messages go back in front of the buffer, order kept. */
  async flush(): Promise<number | undefined> {
    if (this.#messages.length === 0) {
      const seq = this.#lastSeq;
      this.#lastSeq = undefined;
      return seq;
    }
    const messages = this.#messages;
    const seq = this.#lastSeq;
    this.#messages = [];
    this.#lastSeq = undefined;
    try {
      await this.#producer.send({ topic: this.topic, messages });
    } catch (err) {
      this.#messages = messages.concat(this.#messages);
      this.#lastSeq ??= seq;
      throw err;
    }
    return seq;
  }

  /** Messages to send inside a transaction (exactly-once mode); the buffer is emptied. */
  drain(): KafkaMessage[] {
    const out = this.#messages;
    this.#messages = [];
    this.#lastSeq = undefined;
    return out;
  }

  async close(): Promise<void> {}
}
