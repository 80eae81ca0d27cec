// The liveness guard's rule: a partition that has work in hand (records waiting, or processed and not committed)
// and has not moved for the bound is stalled. The worker checks it on a timer; /healthz reports the reason, so an
// orchestrator restarts a worker that went silent, whatever the cause.
import type { PartitionTask } from './task.ts';

export function stalledPartitions(
  tasks: Iterable<PartitionTask>,
  now: number,
  ms: number,
): { partitions: Array<{ topic: string; partition: number }>; reason: string } | undefined {
  const stalled = [...tasks].filter((t) => t.hasWork && now - t.lastProgress >= ms);
  if (stalled.length === 0) return undefined;
  return {
    partitions: stalled.map((t) => ({ topic: t.topic, partition: t.partition })),
    reason:
      `no progress for ${Math.round(ms / 1000)} s on partitions with records waiting: ` +
      stalled.map((t) => `${t.key} (next ${t.next ?? '?'}, committed ${t.committed ?? 'none'})`).join(', '),
  };
}
