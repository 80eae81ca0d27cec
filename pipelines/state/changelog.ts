// The state changelog: what fold, aggregate and dedupe steps hold, kept in a compacted topic with as many
// partitions as the source. After each batch of source partition p, the entries the batch changed go to
// changelog partition p, followed by a marker (`@applied|p`: the batch's last offset and p's event time).
// A worker given partition p reads changelog partition p back before its first record: the state as of the
// last marker, and the records up to it are not applied again. Entries after the last marker come from a
// flush cut short by a crash: they are ignored, since their records will be processed again. The next marker on
// the partition would make them count (it ends the entries before it): the worker that restored writes, before
// it, each such key's entry as it was committed, or a void where none was.
//
// The worker sends a batch's entries only after every sink made that batch's output durable, so a marker
// never runs ahead of the outputs (at least once); in exactly-once mode they go in the batch's transaction.

import { decodeValue, encodeValue } from '../codec/decoder.ts';
import type { Topology } from '../compile/schema.ts';
import { PipelinesError } from '../errors.ts';
import type { KafkaConnection } from '../kafka/connection.ts';
import { closeEndReader, openEndReader, readBatch } from '../kafka/end-reader.ts';
import { endOffsets } from '../kafka/offsets.ts';
import type { KafkaMessage } from '../kafka/produce.ts';
import { applyTopics, type TopicSpec } from '../kafka/topics.ts';
import type { WorkerLog } from '../observe/log.ts';

export const MARKER = '@applied';
/** Header with the entry's version: an aggregate window fed by several partitions has entries in each. */
export const VERSION_HEADER = 'pipelines-state-version';
/** Header of an entry that takes back, on its partition, what a cut-short flush wrote for its key. */
export const VOID_HEADER = 'pipelines-state-void';

/** What a marker keeps of a partition's event time. */
export interface PartitionClock {
  /** Largest event time seen on the partition (its watermark before out-of-orderness); over flows, the slowest. */
  time: number | null;
  /**
   * A join stage's partition: each flow's largest time and the partition's watermark, so that a batch replayed
   * after a restore expires what it expired the first time (restoring `time` to every flow held it back).
   */
  flows?: Array<number | null>;
  watermark?: number;
}

export interface Marker extends PartitionClock {
  /** Last source offset whose effects are in the entries before this marker. */
  offset: string;
}

/** The plan as the changelog sees it. */
export interface StatefulPlan {
  trackChanges(): void;
  drainChanges(): Array<[string, unknown]>;
  loadState(entries: Iterable<[string, unknown]>): { loaded: number; ignored: number };
  partitionClock(partition: number): PartitionClock;
  restorePartitionClock(partition: number, clock: PartitionClock): void;
}

/**
 * The changelog topic of a topology run by a consumer group on its source topic: state belongs with the group's
 * offsets, which are per topic (the same group on another topic must not read this state back).
 */
export function changelogTopic(t: Topology, group?: string): string {
  const name = `${group ?? t.spec.source.group}.${t.spec.source.topic}.state`;
  return t.spec.state.topic ?? name.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** The changelog's topic spec: compacted, partitions, replicas and min in-sync as the source declares. */
export function changelogTopicSpec(t: Topology, partitions: number, group?: string): TopicSpec {
  const source = t.spec.topics[t.spec.source.topic];
  return {
    name: changelogTopic(t, group),
    partitions: Math.max(partitions, source?.partitions ?? 1),
    replicas: source?.replicas ?? 1,
    cleanup: 'compact',
    ...(source?.minInSync !== undefined ? { minInSync: source.minInSync } : {}),
  };
}

export interface RestoreOptions {
  connection: KafkaConnection;
  topic: string;
  log: WorkerLog;
  /** How long reading back may take before the worker gives up (an open transaction can hold it up). */
  timeoutMs?: number;
}

export class StateChangelog {
  readonly topic: string;
  readonly #plan: StatefulPlan;
  readonly #o: RestoreOptions;
  #last = 0;
  /** Per partition, what cancels the entries a cut-short flush left there: sent before its next marker. */
  readonly #voids = new Map<number, KafkaMessage[]>();

  constructor(plan: StatefulPlan, o: RestoreOptions) {
    this.#plan = plan;
    this.#o = o;
    this.topic = o.topic;
    plan.trackChanges();
  }

  /** Creates or grows the topic (compacted) so that it has a partition for each source partition. */
  async ensureTopic(spec: TopicSpec): Promise<void> {
    const [change] = await applyTopics(this.#o.connection, [spec]);
    if (change?.action === 'conflict') {
      throw new PipelinesError('STATE_CHANGELOG', `state changelog ${spec.name}: ${change.detail}`);
    }
    if (change?.action !== 'unchanged') this.#o.log.info({ topic: spec.name, ...change }, 'state changelog topic');
  }

  /** The batch's state changes and its marker, as messages for changelog partition `partition`. */
  messages(partition: number, lastOffset: string): KafkaMessage[] {
    // Versions only need to grow within a process and across restarts (wall clock, microsecond steps).
    const v = Math.max(this.#last + 1, Date.now() * 1000);
    this.#last = v;
    const headers = { [VERSION_HEADER]: String(v) };
    const out: KafkaMessage[] = this.#voids.get(partition) ?? [];
    this.#voids.delete(partition);
    for (const [key, value] of this.#plan.drainChanges()) {
      out.push({ key, value: value === null ? null : encodeValue(value), headers, partition });
    }
    const marker: Marker = { offset: lastOffset, ...this.#plan.partitionClock(partition) };
    out.push({ key: `${MARKER}|${partition}`, value: encodeValue(marker), headers, partition });
    return out;
  }

  /**
   * Reads the changelog partitions back into the plan. Returns, per partition, the last source offset already
   * applied (records up to it must be skipped).
   */
  async restore(partitions: number[]): Promise<Map<number, bigint>> {
    const started = performance.now();
    const read = await readChangelog(this.#o, partitions);
    const best = new Map<string, { v: number; value: unknown }>();
    for (const p of read) {
      for (const e of p.entries.values()) {
        const have = best.get(e.key);
        if (!have || e.v >= have.v) best.set(e.key, e);
      }
      // Before the plan holds the values (its steps may change them in place).
      this.#voids.set(p.partition, voidsOf(p));
    }
    const counts = this.#plan.loadState([...best].map(([k, e]) => [k, e.value]));
    const applied = new Map<number, bigint>();
    for (const p of read) {
      if (!p.marker) continue;
      applied.set(p.partition, BigInt(p.marker.offset));
      this.#plan.restorePartitionClock(p.partition, p.marker);
    }
    this.#o.log.info(
      {
        topic: this.topic,
        partitions,
        entries: counts.loaded,
        ignored: counts.ignored,
        discarded: read.reduce((n, p) => n + p.discarded.length, 0),
        applied: Object.fromEntries([...applied].map(([p, o]) => [p, o.toString()])),
        ms: Math.round(performance.now() - started),
      },
      'state restored from the changelog',
    );
    return applied;
  }
}

interface Entry {
  key: string;
  v: number;
  value: unknown;
  void: boolean;
}

interface PartitionRead {
  partition: number;
  /** Per key, the last entry a marker ended (the partition's own order). */
  entries: Map<string, Entry>;
  marker: Marker | undefined;
  /** Entries after the last marker (a flush cut short). */
  discarded: Entry[];
}

/**
 * What keeps a cut-short flush's entries from counting once the partition's next marker ends them: per key, the
 * entry committed before them again (its version unchanged, so it outranks nothing it did not outrank), or a void.
 */
function voidsOf(p: PartitionRead): KafkaMessage[] {
  const keys = new Set(p.discarded.map((e) => e.key));
  return [...keys].map((key): KafkaMessage => {
    const e = p.entries.get(key);
    if (!e) return { key, value: null, headers: { [VOID_HEADER]: '1' }, partition: p.partition };
    const value = e.value === null ? null : encodeValue(e.value);
    return { key, value, headers: { [VERSION_HEADER]: String(e.v) }, partition: p.partition };
  });
}

/** Reads changelog partitions from the start to their end (read_committed), with a private, commit-less group. */
async function readChangelog(o: RestoreOptions, partitions: number[]): Promise<PartitionRead[]> {
  const reads = new Map<number, PartitionRead & { pending: Entry[] }>(
    partitions.map((p) => [p, { partition: p, entries: new Map(), pending: [], marker: undefined, discarded: [] }]),
  );
  if (partitions.length === 0) return [];
  // The end as the broker has it, not the first one a read_committed reader meets: behind a transaction that a
  // killed worker left open lie the markers later workers committed, and a restore without them replays nothing
  // while the group's offsets have moved on (the records waiting in a join's state were lost so). (Asked of the
  // admin API: the reader's own watermark query answers the last stable offset too.)
  const highs = await endOffsets(o.connection, o.topic);
  // Nothing to read (a new topology, or a new group): no reader to open and wait out to its end.
  if (partitions.every((p) => !highs.has(p))) return [...reads.values()];
  const consumer = await openEndReader(o.connection, 'restore', 10_000);
  try {
    const atEnd = new Set<number>();
    consumer.on('partition.eof', (e) => {
      if (e.offset === undefined || BigInt(e.offset) >= (highs.get(e.partition) ?? 0n)) atEnd.add(e.partition);
    });
    consumer.assign(partitions.map((partition) => ({ topic: o.topic, partition, offset: -2 /* beginning */ })));
    const deadline = Date.now() + (o.timeoutMs ?? 120_000);
    // One more read after every partition reported its end: messages fetched before the event are taken too.
    for (let extra = 0; extra < 2; ) {
      if (atEnd.size === partitions.length) extra++;
      if (Date.now() > deadline) {
        throw Object.assign(
          new Error(
            `state changelog ${o.topic}: partitions ${partitions.filter((p) => !atEnd.has(p)).join(', ')} not ` +
              `read to the end within ${Math.round((o.timeoutMs ?? 120_000) / 1000)} s (is a transaction left open?)`,
          ),
          { retriable: true },
        );
      }
      const batch = await readBatch(consumer, 10_000);
      for (const m of batch) {
        const r = reads.get(m.partition);
        if (!r || !m.key) continue;
        const key = m.key.toString();
        if (key.startsWith(`${MARKER}|`)) {
          if (m.value) r.marker = decodeValue(m.value) as Marker;
          for (const e of r.pending) {
            if (e.void) r.entries.delete(e.key);
            else r.entries.set(e.key, e);
          }
          r.pending = [];
          continue;
        }
        const headers = m.headers ?? [];
        const version = headers.find((h) => VERSION_HEADER in h)?.[VERSION_HEADER];
        r.pending.push({
          key,
          v: Number(version?.toString() ?? 0),
          value: m.value ? decodeValue(m.value) : null,
          void: headers.some((h) => VOID_HEADER in h),
        });
      }
    }
    for (const r of reads.values()) r.discarded = r.pending;
    return [...reads.values()];
  } finally {
    await closeEndReader(consumer);
  }
}
