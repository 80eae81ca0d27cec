// Acknowledgement-based commits: sinks buffer and flush on a timer (or when their buffers pass the bound, which
// also pauses the consumer); each sink acknowledges by partition offset what became durable, and an offset is
// committed only once every sink that got output from the records before it has acknowledged. State changes go
// out after the outputs of their batch are durable in every other sink, since a restore skips those records.
// Commits are level-triggered: each pass commits, per partition, whatever is settled and not yet committed, so a
// commit refused during a rebalance is simply made again by the next pass.

import { type PartitionTask, tpKey } from '../task.ts';
import type { CommitContext, CommitStrategy, Delivery } from './strategy.ts';
import { CommitTracker } from './tracker.ts';

export interface AcknowledgedOptions {
  flushIntervalMs: number;
  /** Buffered rows across sinks above which the consumer pauses until a flush brings them down. */
  maxBufferedRows: number;
}

export class AcknowledgedCommits implements CommitStrategy {
  readonly #c: CommitContext;
  readonly #o: AcknowledgedOptions;
  readonly #tracker = new CommitTracker();
  /** Per partition, the end of the prefix every sink acknowledged (what may be committed, held records aside). */
  readonly #settled = new Map<string, bigint>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #committing: Promise<void> | undefined;
  #commitAgain = false;

  constructor(c: CommitContext, o: AcknowledgedOptions) {
    this.#c = c;
    this.#o = o;
    for (const sink of this.#flushed()) {
      sink.onAck = (a) => {
        this.#tracker.acknowledge(sink.id, a, a.next);
        c.events?.acknowledged?.({ sink: sink.id, topic: a.topic, partition: a.partition, next: a.next });
      };
    }
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#flushCycle().catch((e) => this.#c.fail(e));
    }, this.#o.flushIntervalMs);
  }

  async deliver(d: Delivery): Promise<void> {
    const c = this.#c;
    const used = c.sinks.filter((s) => d.outputs[s.id]);
    const dlq = d.deadLetters.length > 0 ? c.deadLetters : undefined;
    const waitFor = used.map((s) => s.id);
    if (dlq) waitFor.push(dlq.id);
    if (d.state && c.changelog) waitFor.push(c.changelog.id);
    this.#tracker.track(d.range, d.range.last, waitFor);
    if (d.state) d.task.pendingState.push({ range: d.range, messages: d.state });
    for (const sink of used) await sink.append(d.outputs[sink.id]!, d.range);
    dlq?.append(d.deadLetters, d.range);
    this.#commitReady().catch((e) => c.fail(e));
  }

  skipped(task: PartitionTask, last: string): void {
    this.#tracker.track(task, last, []);
    this.#commitReady().catch((e) => this.#c.fail(e));
  }

  afterBatch(): void {
    if (!this.#overLimit()) return;
    this.#c.pause(true);
    this.#flushCycle().catch((e) => this.#c.fail(e));
  }

  async revoking(_tasks: PartitionTask[], batchesDone: () => Promise<void>): Promise<void> {
    await batchesDone();
    await this.#flushCycle().catch((e) => this.#c.log.warn({ err: e.message }, 'flush on revoke failed'));
  }

  revoked(tasks: PartitionTask[]): void {
    this.#tracker.forget(tasks);
    for (const t of tasks) {
      this.#settled.delete(t.key);
      this.#c.changelog?.forget(t.topic, t.partition);
    }
  }

  async drain(): Promise<void> {
    await this.#flushCycle();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Sinks flushed by this strategy: the topology's, the dead letters, the state changelog. */
  #flushed() {
    const c = this.#c;
    return [...c.outputs, ...(c.changelog ? [c.changelog] : [])];
  }

  #overLimit(): boolean {
    let n = 0;
    for (const s of this.#c.outputs) n += s.buffered;
    return n >= this.#o.maxBufferedRows;
  }

  /** One flush of every sink at a time; acknowledged batches become committable offsets. */
  #flushCycle(): Promise<void> {
    this.#flushing ??= this.#flushAll().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #flushAll(): Promise<void> {
    const c = this.#c;
    await Promise.all(
      c.outputs.map(async (sink) => {
        if (sink.buffered === 0) return;
        const started = performance.now();
        // The sink retries its own writes (pausing the source meanwhile, see the worker); a throw is final.
        await sink.flush();
        c.events?.flushed?.({ sink: sink.id, ms: performance.now() - started });
      }),
    );
    await this.#sendState();
    await this.#commitReady();
    if (c.paused() && !this.#overLimit()) c.pause(false);
  }

  /**
   * State entries go out in order per partition, each once every other sink acknowledged its batch. Most belong
   * to batches whose outputs this cycle flushed; some wait longer (a ClickHouse sink holds a partition's rows
   * until it has replayed a recorded range whole).
   */
  async #sendState(): Promise<void> {
    const changelog = this.#c.changelog;
    if (!changelog) return;
    let sent = false;
    for (const task of this.#c.tasks()) {
      const pending = task.pendingState;
      let ready = 0;
      while (ready < pending.length && this.#tracker.settledUpTo(task, pending[ready]!.range.last, changelog.id))
        ready++;
      for (const s of pending.splice(0, ready)) changelog.append(s.messages, s.range);
      sent ||= ready > 0;
    }
    if (!sent && changelog.buffered === 0) return;
    const started = performance.now();
    await changelog.flush();
    this.#c.events?.flushed?.({ sink: changelog.id, ms: performance.now() - started });
  }

  /** One commit at a time; a request while one is in flight runs another pass after it. */
  #commitReady(): Promise<void> {
    this.#commitAgain = true;
    this.#committing ??= (async () => {
      try {
        while (this.#commitAgain) {
          this.#commitAgain = false;
          await this.#commitPass();
        }
      } finally {
        this.#committing = undefined;
      }
    })();
    return this.#committing;
  }

  async #commitPass(): Promise<void> {
    const c = this.#c;
    for (const o of this.#tracker.takeCommittable()) {
      const key = tpKey(o.topic, o.partition);
      const offset = BigInt(o.offset);
      if ((this.#settled.get(key) ?? -1n) < offset) this.#settled.set(key, offset);
    }
    const held = c.heldOffsets();
    const wanted: Array<{ task: PartitionTask; offset: bigint }> = [];
    for (const task of c.tasks()) {
      let offset = this.#settled.get(task.key);
      if (offset === undefined) continue;
      // A step still holds records (waiting for a table row): commit no further than the oldest of them.
      const h = held?.[task.key];
      if (h !== undefined && BigInt(h) < offset) offset = BigInt(h);
      if (task.committed === undefined || offset > task.committed) wanted.push({ task, offset });
    }
    if (wanted.length === 0) return;
    const offsets = wanted.map((w) => ({ topic: w.task.topic, partition: w.task.partition, offset: String(w.offset) }));
    const started = performance.now();
    try {
      await c.retry('commit', () => c.consumer.commitOffsets(offsets));
    } catch (err) {
      // A refused commit (e.g. the group moved on) loses nothing: the next pass tries again while the partition
      // stays ours, and its next owner processes the records again otherwise.
      c.log.warn({ err: (err as Error).message, offsets }, 'commit failed; trying again at the next flush');
      return;
    }
    const now = c.now();
    for (const w of wanted) w.task.committedAt(w.offset, now);
    c.events?.committed?.({ partitions: offsets.length, ms: performance.now() - started });
  }
}
