// Commit coordination: an offset is committed only when every sink that received output from the records
// before it has made that output durable. Batches are tracked per partition in consumption order; sinks
// acknowledge by partition offset ("everything before `next` is durable"), so the committable offset is the
// end of the longest prefix of batches whose sinks have all acknowledged.

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface CommitOffset extends TopicPartition {
  /** The next offset to read (last processed + 1), as Kafka expects. */
  offset: string;
}

interface PendingBatch {
  nextOffset: bigint;
  waitingFor: Set<string>;
}

interface PartitionState {
  tp: TopicPartition;
  batches: PendingBatch[];
  /** Per sink, how far it has acknowledged this partition. */
  acked: Map<string, bigint>;
}

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export class CommitTracker {
  readonly #partitions = new Map<string, PartitionState>();
  readonly #ready = new Map<string, CommitOffset>();

  /** Records a processed batch [.., lastOffset] of one partition whose output went to `sinks` (maybe none). */
  track(tp: TopicPartition, lastOffset: bigint | string, sinks: Iterable<string>): void {
    const state = this.#state(tp);
    const nextOffset = BigInt(lastOffset) + 1n;
    const waitingFor = new Set<string>();
    for (const sink of sinks) if ((state.acked.get(sink) ?? -1n) < nextOffset) waitingFor.add(sink);
    state.batches.push({ nextOffset, waitingFor });
    this.#advance(state);
  }

  /** `sink` made durable everything it received from this partition before `next`. */
  acknowledge(sink: string, tp: TopicPartition, next: bigint | string): void {
    const state = this.#partitions.get(tpKey(tp.topic, tp.partition));
    if (!state) return;
    const n = BigInt(next);
    if ((state.acked.get(sink) ?? -1n) < n) state.acked.set(sink, n);
    for (const b of state.batches) {
      if (b.nextOffset > n) break;
      b.waitingFor.delete(sink);
    }
    this.#advance(state);
  }

  /**
   * Whether every sink but `except` has acknowledged all the partition's batches up to `lastOffset`: what a state
   * changelog (`except`) may claim as applied, since a restore skips those records for every sink.
   */
  settledUpTo(tp: TopicPartition, lastOffset: bigint | string, except: string): boolean {
    const state = this.#partitions.get(tpKey(tp.topic, tp.partition));
    if (!state) return false;
    const next = BigInt(lastOffset) + 1n;
    for (const b of state.batches) {
      if (b.nextOffset > next) break;
      for (const sink of b.waitingFor) if (sink !== except) return false;
    }
    return true;
  }

  /** Offsets that became committable since the last call; each partition at most once. */
  takeCommittable(): CommitOffset[] {
    const out = [...this.#ready.values()];
    this.#ready.clear();
    return out;
  }

  /** Batches not yet acknowledged by every sink. */
  get inFlight(): number {
    let n = 0;
    for (const p of this.#partitions.values()) n += p.batches.length;
    return n;
  }

  /** Forgets revoked partitions (their uncommitted work will be redone by the next owner). */
  forget(tps: TopicPartition[]): void {
    for (const tp of tps) {
      const key = tpKey(tp.topic, tp.partition);
      this.#partitions.delete(key);
      this.#ready.delete(key);
    }
  }

  #state(tp: TopicPartition): PartitionState {
    const key = tpKey(tp.topic, tp.partition);
    let state = this.#partitions.get(key);
    if (!state) {
      state = { tp: { topic: tp.topic, partition: tp.partition }, batches: [], acked: new Map() };
      this.#partitions.set(key, state);
    }
    return state;
  }

  #advance(state: PartitionState): void {
    let last: PendingBatch | undefined;
    while (state.batches.length > 0 && state.batches[0]!.waitingFor.size === 0) last = state.batches.shift();
    if (last) {
      this.#ready.set(tpKey(state.tp.topic, state.tp.partition), { ...state.tp, offset: last.nextOffset.toString() });
    }
  }
}
