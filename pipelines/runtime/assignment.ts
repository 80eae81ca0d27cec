// Newly assigned partitions become tasks, each told what to skip before its first batch: the offsets its state
// changelog already applied, and the ranges a sink that keeps its own positions (exactly-once ClickHouse) may
// already hold, to be replayed exactly.
import type { WorkerLog } from '../observe/log.ts';
import type { Sink } from '../sinks/sink.ts';
import type { SourceConsumer, TopicPartition } from './source.ts';
import { PartitionTask, tpKey } from './task.ts';

export interface AssignmentDeps {
  now: number;
  consumer: SourceConsumer;
  /** The state changelog: restores the partitions' state, answers the last offset applied per partition. */
  restore: ((partitions: number[]) => Promise<Map<number, bigint>>) | undefined;
  sinks: readonly Sink[];
  /** The worker's retry of its own calls. */
  retry<T>(what: string, fn: () => Promise<T>): Promise<T>;
  log: WorkerLog;
}

export async function assignedTasks(partitions: TopicPartition[], d: AssignmentDeps): Promise<PartitionTask[]> {
  const tasks = new Map(
    partitions.map((tp) => [tpKey(tp.topic, tp.partition), new PartitionTask(tp.topic, tp.partition, d.now)]),
  );
  if (partitions.length === 0) return [];
  const restore = d.restore;
  if (restore) {
    const applied = await d.retry('state restore', () => restore(partitions.map((tp) => tp.partition)));
    for (const task of tasks.values()) {
      const offset = applied.get(task.partition);
      if (offset !== undefined) task.restoredUpTo(offset);
    }
  }
  const positional = d.sinks.filter((s) => s.assigned);
  if (positional.length === 0) return [...tasks.values()];
  // Bounded: an offset fetch can go unanswered while the group settles after a member was killed.
  const committed = await d.retry('committed offsets', () => d.consumer.committed(partitions, 15_000));
  const withCommitted = partitions.map((tp) => {
    const c = committed.find((x) => x.topic === tp.topic && x.partition === tp.partition);
    const offset = c?.offset != null && BigInt(c.offset) >= 0n ? c.offset : undefined;
    return { ...tp, committed: offset };
  });
  for (const sink of positional) {
    for (const r of await sink.assigned!(withCommitted)) {
      tasks.get(tpKey(r.topic, r.partition))?.replay(sink.id, r);
      d.log.info(
        { sink: sink.id, partition: r.partition, first: r.first, last: r.last },
        'replaying a range the sink may hold',
      );
    }
  }
  return [...tasks.values()];
}
