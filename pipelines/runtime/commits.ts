// Commit coordination: an offset is committed only when every sink has acknowledged every record
// up to it. Batches are tracked per partition in consumption order; each sink acknowledges in the
// order it received its batches, so the committable offset is the end of the longest fully
// acknowledged prefix.

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface CommitOffset extends TopicPartition {
  /** The next offset to read (last processed + 1), as Kafka expects. */
  offset: string;
}

interface PendingBatch {
  seq: number;
  nextOffset: bigint;
  waitingFor: Set<string>;
}

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export class CommitTracker {
  private seq = 0;
  private readonly pending = new Map<string, { tp: TopicPartition; batches: PendingBatch[] }>();
  /** Per sink: sequence numbers handed to it and not yet acknowledged, oldest first. */
  private readonly bySink = new Map<string, number[]>();
  private readonly ready = new Map<string, CommitOffset>();

  /**
   * Records a processed batch of one partition whose output went to `sinks` (possibly none: a batch
   * that was entirely filtered out is committable at once). Returns the batch's sequence number.
   */
  track(tp: TopicPartition, lastOffset: bigint | string, sinks: Iterable<string>): number {
    const seq = ++this.seq;
    const key = tpKey(tp.topic, tp.partition);
    let entry = this.pending.get(key);
    if (!entry) {
      entry = { tp, batches: [] };
      this.pending.set(key, entry);
    }
    const waitingFor = new Set(sinks);
    entry.batches.push({ seq, nextOffset: BigInt(lastOffset) + 1n, waitingFor });
    for (const sink of waitingFor) {
      const queue = this.bySink.get(sink);
      if (queue) queue.push(seq);
      else this.bySink.set(sink, [seq]);
    }
    this.advance(entry);
    return seq;
  }

  /** A sink made durable everything it was handed up to and including batch `seq`. */
  acknowledge(sink: string, seq: number): void {
    const queue = this.bySink.get(sink);
    if (!queue) return;
    let done = 0;
    while (done < queue.length && queue[done]! <= seq) done++;
    const acked = new Set(queue.splice(0, done));
    if (acked.size === 0) return;
    for (const entry of this.pending.values()) {
      for (const b of entry.batches) if (acked.has(b.seq)) b.waitingFor.delete(sink);
      this.advance(entry);
    }
  }

  /** Offsets that became committable since the last call; each partition at most once. */
  takeCommittable(): CommitOffset[] {
    const out = [...this.ready.values()];
    this.ready.clear();
    return out;
  }

  /** Batches not yet acknowledged by every sink. */
  get inFlight(): number {
    let n = 0;
    for (const e of this.pending.values()) n += e.batches.length;
    return n;
  }

  /** Forgets revoked partitions (their uncommitted work will be redone by the next owner). */
  forget(tps: TopicPartition[]): void {
    for (const tp of tps) {
      const key = tpKey(tp.topic, tp.partition);
      const entry = this.pending.get(key);
      this.pending.delete(key);
      this.ready.delete(key);
      if (!entry) continue;
      const dropped = new Set(entry.batches.map((b) => b.seq));
      for (const queue of this.bySink.values()) {
        for (let i = queue.length - 1; i >= 0; i--) if (dropped.has(queue[i]!)) queue.splice(i, 1);
      }
    }
  }

  private advance(entry: { tp: TopicPartition; batches: PendingBatch[] }): void {
    let last: PendingBatch | undefined;
    while (entry.batches.length > 0 && entry.batches[0]!.waitingFor.size === 0) last = entry.batches.shift();
    if (last) {
      this.ready.set(tpKey(entry.tp.topic, entry.tp.partition), { ...entry.tp, offset: last.nextOffset.toString() });
    }
  }
}
