// One assigned source partition: its cursor (every reason to skip a record is decided here, in one place), the
// state-changelog entries of its processed batches that still wait for their outputs, its commit position, and
// the progress that the liveness guard watches. A task lives from an assignment to the revoke that ends it: work
// begun under a task that is no longer the partition's current one belongs to another member.

import type { KafkaMessage } from '../kafka/produce.ts';
import type { ReplayRange, SourceRange } from '../sinks/sink.ts';

/** The part of a fetched message that the cursor reads. */
export interface Offsetted {
  offset: string;
}

/** Records of a batch handed to the steps together; `skip` names the sinks that already hold their outputs. */
export interface Segment<M extends Offsetted> {
  messages: M[];
  skip: ReadonlySet<string>;
}

/** What a batch handed out by the client comes to, once the records this partition has seen are left out. */
export type Admitted<M extends Offsetted> =
  | { kind: 'process'; segments: Array<Segment<M>> }
  /** The restored state already holds every record up to `last`: nothing to process, but the offset moves on. */
  | { kind: 'restored'; last: string }
  /** Every record was processed before (a batch handed out again after a pause). */
  | { kind: 'seen' };

export const tpKey = (topic: string, partition: number): string => `${topic}/${partition}`;

export class PartitionTask {
  readonly topic: string;
  readonly partition: number;
  readonly key: string;
  /** The offset after the last record processed: a batch handed out again after pause/resume is not processed twice. */
  #next: bigint | undefined;
  /** The last offset whose effects the restored state already holds. */
  #restored: bigint | undefined;
  /** Per sink, a range the sink already holds: records before it are skipped for that sink, the range replayed. */
  readonly #replays = new Map<string, ReplayRange>();
  /** State entries of processed batches, in order, not yet sent (they wait until the batch's outputs are durable). */
  readonly pendingState: Array<{ range: SourceRange; messages: KafkaMessage[] }> = [];
  /** The next offset to read as last committed by this member (undefined: nothing committed yet). */
  committed: bigint | undefined;
  /** The end of the partition as the last batch saw it (its high watermark). */
  #end: bigint | undefined;
  /** When processing or committing last moved forward (wall clock, ms). */
  lastProgress: number;

  constructor(topic: string, partition: number, now: number) {
    this.topic = topic;
    this.partition = partition;
    this.key = tpKey(topic, partition);
    this.lastProgress = now;
  }

  /** The restored state holds the effects of every record up to `offset`. */
  restoredUpTo(offset: bigint): void {
    this.#restored = offset;
  }

  /** `sink` already holds `range`: skip it for the records before, hand it the range as one piece. */
  replay(sink: string, range: ReplayRange): void {
    this.#replays.set(sink, range);
  }

  /** Decides what of a fetched batch is processed, and cuts it where a sink's replay range begins and ends. */
  admit<M extends Offsetted>(batch: M[], highWatermark: string | undefined, now: number): Admitted<M> {
    if (highWatermark !== undefined) this.#end = BigInt(highWatermark);
    const next = this.#next;
    let msgs = next === undefined ? batch : batch.filter((m) => BigInt(m.offset) >= next);
    if (this.#restored !== undefined && msgs.length > 0) {
      const last = msgs[msgs.length - 1]!.offset;
      const restored = this.#restored;
      msgs = msgs.filter((m) => BigInt(m.offset) > restored);
      if (BigInt(last) >= restored) this.#restored = undefined;
      if (msgs.length === 0) {
        this.#moved(BigInt(last) + 1n, now);
        return { kind: 'restored', last };
      }
    }
    if (msgs.length === 0) return { kind: 'seen' };
    this.#moved(BigInt(msgs[msgs.length - 1]!.offset) + 1n, now);
    return { kind: 'process', segments: this.#segments(msgs) };
  }

  /** The last offset whose effects the state holds: processed here, or restored (undefined: neither yet). */
  get applied(): bigint | undefined {
    return this.#next !== undefined ? this.#next - 1n : this.#restored;
  }

  /** The offset after the last record processed (undefined before the first). */
  get next(): bigint | undefined {
    return this.#next;
  }

  /** A commit of `offset` went through. */
  committedAt(offset: bigint, now: number): void {
    if (this.committed !== undefined && offset <= this.committed) return;
    this.committed = offset;
    this.lastProgress = now;
  }

  /**
   * Whether this partition has work in hand: records known to be waiting (fetched or seen in the partition's
   * end) or processed records whose offset is not committed yet. A partition without work is never stalled.
   */
  get hasWork(): boolean {
    const next = this.#next;
    if (next === undefined) return this.#end !== undefined && this.#end > (this.committed ?? 0n);
    if (this.#end !== undefined && this.#end > next) return true;
    return this.committed === undefined || this.committed < next;
  }

  /**
   * The partition's end when it is the only work left (all processed is committed, the end lies beyond): what is
   * left may be transaction markers, which no record and no commit covers.
   */
  get endBeyondCommit(): bigint | undefined {
    const next = this.#next;
    if (next === undefined || this.committed !== next || this.#end === undefined || this.#end <= next) return undefined;
    return this.#end;
  }

  /** Nothing but markers (or aborted records) lies between what was committed and `end`. */
  endIsMarkers(end: bigint): void {
    if (this.#end === end) this.#end = this.#next;
  }

  #moved(next: bigint, now: number): void {
    this.#next = next;
    this.lastProgress = now;
  }

  #segments<M extends Offsetted>(msgs: M[]): Array<Segment<M>> {
    const replays = this.#replays;
    if (replays.size === 0) return [{ messages: msgs, skip: new Set() }];
    const cuts = new Set<bigint>();
    for (const r of replays.values()) {
      cuts.add(BigInt(r.first));
      cuts.add(BigInt(r.last) + 1n);
    }
    const out: Array<Segment<M>> = [];
    let current: M[] = [];
    const close = () => {
      if (current.length === 0) return;
      const first = BigInt(current[0]!.offset);
      const skip = new Set<string>();
      for (const [sink, r] of replays) if (first < BigInt(r.first)) skip.add(sink);
      out.push({ messages: current, skip });
      current = [];
    };
    // A cut falls before the first record at or past it: a topic written in transactions has offsets that hold
    // no record (the markers), and a range may end just before one.
    const ordered = [...cuts].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    let c = 0;
    for (const m of msgs) {
      const offset = BigInt(m.offset);
      let crossed = false;
      while (c < ordered.length && ordered[c]! <= offset) {
        crossed = true;
        c++;
      }
      if (crossed) close();
      current.push(m);
    }
    close();
    // Replays that are behind us are done.
    const lastOffset = BigInt(msgs[msgs.length - 1]!.offset);
    for (const [sink, r] of replays) if (lastOffset >= BigInt(r.last)) replays.delete(sink);
    return out;
  }
}
