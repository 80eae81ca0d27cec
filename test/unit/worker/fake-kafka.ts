// A deterministic stand-in for the Kafka client behind the interfaces the worker uses (runtime/source.ts,
// commit/transactional.ts, the KafkaSink's producer), in the spirit of Kafka's MockConsumer / MockProducer: the
// test assigns and revokes partitions, delivers batches, fails or holds sends and commits, and fences producers,
// one step at a time, and reads what was produced and committed.

import type { KafkaMessage } from '../../../pipelines/kafka/produce.ts';
import type { Transaction, TransactionalProducer } from '../../../pipelines/runtime/commit/transactional.ts';
import {
  ASSIGN_PARTITIONS,
  type CommitOffset,
  type FetchedBatch,
  type FetchedMessage,
  REVOKE_PARTITIONS,
  type RebalanceListener,
  type SourceClient,
  type SourceConsumer,
  type TopicPartition,
} from '../../../pipelines/runtime/source.ts';

/** An error as the Kafka client raises it: a librdkafka code and a message. */
export function kafkaError(code: number, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** A promise the test resolves when it wants (a send or a commit held in flight). */
export function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => {
    open = r;
  });
  return { wait, open };
}

export class FakeConsumer implements SourceConsumer {
  readonly config: Record<string, unknown>;
  readonly #onRebalance: RebalanceListener;
  #eachBatch: ((p: { batch: FetchedBatch }) => Promise<void>) | undefined;
  /** The group's committed offsets, by 'topic/partition' (what a new owner would start from). */
  readonly group = new Map<string, string>();
  /** Every successful commitOffsets call, in order. */
  readonly commits: CommitOffset[][] = [];
  /** Errors the next commitOffsets calls throw, one per call. */
  readonly commitFailures: Error[] = [];
  paused = false;
  disconnected = false;

  constructor(config: Record<string, unknown>, onRebalance: RebalanceListener) {
    this.config = config;
    this.#onRebalance = onRebalance;
  }

  async connect(): Promise<void> {}
  async subscribe(): Promise<void> {}
  async run(o: { eachBatch(p: { batch: FetchedBatch }): Promise<void> }): Promise<void> {
    this.#eachBatch = o.eachBatch;
  }
  /** The pause and resume calls, with the partitions they named (none: every assigned partition). */
  readonly pauses: Array<{ resume: boolean; partitions: number[] | undefined }> = [];
  pause(topics: Array<{ topic: string; partitions?: number[] }>): void {
    this.paused = true;
    this.pauses.push({ resume: false, partitions: topics[0]?.partitions });
  }
  resume(topics: Array<{ topic: string; partitions?: number[] }>): void {
    if (!topics[0]?.partitions) this.paused = false;
    this.pauses.push({ resume: true, partitions: topics[0]?.partitions });
  }
  async commitOffsets(offsets: CommitOffset[]): Promise<void> {
    const failure = this.commitFailures.shift();
    if (failure) throw failure;
    this.commits.push(offsets.map((o) => ({ ...o })));
    for (const o of offsets) this.group.set(`${o.topic}/${o.partition}`, o.offset);
  }
  async committed(partitions: TopicPartition[]): Promise<Array<TopicPartition & { offset: string }>> {
    return partitions.map((tp) => ({ ...tp, offset: this.group.get(`${tp.topic}/${tp.partition}`) ?? '-1001' }));
  }
  async disconnect(): Promise<void> {
    this.disconnected = true;
  }

  /** The group gives this member `partitions`; resolves when the worker's rebalance callback returned. */
  assign(topic: string, ...partitions: number[]): Promise<void> {
    return this.#onRebalance(
      ASSIGN_PARTITIONS,
      partitions.map((partition) => ({ topic, partition })),
    );
  }

  revoke(topic: string, ...partitions: number[]): Promise<void> {
    return this.#onRebalance(
      REVOKE_PARTITIONS,
      partitions.map((partition) => ({ topic, partition })),
    );
  }

  /** Hands the worker one batch, as the client's eachBatch does; resolves when the worker is done with it. */
  deliver(topic: string, partition: number, from: number, values: unknown[], highWatermark?: number): Promise<void> {
    const messages: FetchedMessage[] = values.map((v, i) => ({
      offset: String(from + i),
      key: Buffer.from(`k${from + i}`),
      value: v === null ? null : Buffer.from(JSON.stringify(v)),
      timestamp: String(1_700_000_000_000 + from + i),
    }));
    const end = highWatermark ?? from + values.length;
    return this.#eachBatch!({ batch: { topic, partition, highWatermark: String(end), messages } });
  }

  /** The last offset committed for a partition by this member (undefined: none). */
  lastCommit(topic: string, partition: number): string | undefined {
    let out: string | undefined;
    for (const c of this.commits) for (const o of c) if (o.topic === topic && o.partition === partition) out = o.offset;
    return out;
  }
}

export class FakeClient implements SourceClient {
  consumers: FakeConsumer[] = [];
  consumer(config: Record<string, unknown>, onRebalance: RebalanceListener): FakeConsumer {
    const c = new FakeConsumer(config, onRebalance);
    this.consumers.push(c);
    return c;
  }
}

/** Produced messages by topic, visible once sent (plain sends) or once their transaction commits. */
export class FakeBroker {
  readonly topics = new Map<string, KafkaMessage[]>();
  /** Errors the next plain sends throw, one per call. */
  readonly sendFailures: Error[] = [];
  /** While set, plain sends wait for it. */
  hold: Promise<void> | undefined;
  /** Offsets committed through transactions, by 'topic/partition'. */
  readonly group = new Map<string, string>();

  read(topic: string): KafkaMessage[] {
    return this.topics.get(topic) ?? [];
  }

  #append(topic: string, messages: KafkaMessage[]): void {
    const list = this.topics.get(topic) ?? [];
    list.push(...messages);
    this.topics.set(topic, list);
  }

  /** A plain (idempotent) producer, as the KafkaSink uses it. */
  producer() {
    return {
      send: async (o: { topic: string; messages: KafkaMessage[] }) => {
        if (this.hold) await this.hold;
        const failure = this.sendFailures.shift();
        if (failure) throw failure;
        this.#append(o.topic, o.messages);
        return [];
      },
    };
  }

  /** A transactional producer; `script` says how its next transactions end. */
  transactional(script: TransactionScript = new TransactionScript()): FakeTransactionalProducer {
    return new FakeTransactionalProducer(this, script, (topic, messages) => this.#append(topic, messages));
  }
}

/** How the next transactions go: each entry is the error the nth commit (or abort) throws, or undefined for success. */
export class TransactionScript {
  readonly commitFailures: Array<Error | undefined> = [];
  readonly sendOffsetsFailures: Array<Error | undefined> = [];
  readonly sendFailures: Array<Error | undefined> = [];
  readonly abortFailures: Array<Error | undefined> = [];
  /** Transactions committed and aborted, in all producers sharing this script. */
  committed = 0;
  aborted = 0;
}

export class FakeTransactionalProducer implements TransactionalProducer {
  readonly #broker: FakeBroker;
  readonly script: TransactionScript;
  readonly #append: (topic: string, messages: KafkaMessage[]) => void;
  disconnected = false;

  constructor(broker: FakeBroker, script: TransactionScript, append: (t: string, m: KafkaMessage[]) => void) {
    this.#broker = broker;
    this.script = script;
    this.#append = append;
  }

  async transaction(): Promise<Transaction> {
    if (this.disconnected) throw kafkaError(-172, 'producer is disconnected');
    const sends: Array<{ topic: string; messages: KafkaMessage[] }> = [];
    const offsets: CommitOffset[] = [];
    const script = this.script;
    return {
      send: async (o) => {
        const failure = script.sendFailures.shift();
        if (failure) throw failure;
        sends.push({ topic: o.topic, messages: [...o.messages] });
      },
      sendOffsets: async (o) => {
        const failure = script.sendOffsetsFailures.shift();
        if (failure) throw failure;
        for (const t of o.topics) for (const p of t.partitions) offsets.push({ topic: t.topic, ...p });
      },
      commit: async () => {
        const failure = script.commitFailures.shift();
        if (failure) throw failure;
        for (const s of sends) this.#append(s.topic, s.messages);
        for (const o of offsets) this.#broker.group.set(`${o.topic}/${o.partition}`, o.offset);
        script.committed++;
      },
      abort: async () => {
        const failure = script.abortFailures.shift();
        script.aborted++;
        if (failure) throw failure;
      },
    };
  }

  async disconnect(): Promise<void> {
    this.disconnected = true;
  }
}
