// The end of the source topic, read every few seconds by an admin client: the lag keeps moving while the
// worker consumes nothing (paused on a failing sink, or stuck), which is when it matters most.
import type { KafkaJS } from '@confluentinc/kafka-javascript';
import type { PipelineEvents } from './metrics.ts';

export interface WatermarkWatch {
  stop(): Promise<void>;
}

/**
 * Polls the topic's high watermarks every `intervalMs` (default 5 s) into `events.watermark`, with the group's
 * position (committed offset, else where `start` puts a new group): the lag of a partition this worker holds
 * but has not processed anything of yet (stuck on its first batch).
 */
export function watchWatermarks(o: {
  kafka: KafkaJS.Kafka;
  topic: string;
  group: string;
  start: 'earliest' | 'latest';
  events: Pick<PipelineEvents, 'watermark'>;
  intervalMs?: number;
  log?: { warn(o: object, msg: string): void };
}): WatermarkWatch {
  const admin = o.kafka.admin();
  let connected: Promise<void> | undefined;
  let busy = false;
  let warned = false;
  const poll = async () => {
    if (busy) return;
    busy = true;
    try {
      connected ??= admin.connect();
      await connected;
      const [ends, [committed]] = await Promise.all([
        admin.fetchTopicOffsets(o.topic),
        admin.fetchOffsets({ groupId: o.group, topics: [o.topic] }),
      ]);
      const at = new Map((committed?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
      for (const p of ends) {
        const c = at.get(p.partition) ?? -1;
        const position = c >= 0 ? c : o.start === 'earliest' ? Number(p.low) : Number(p.high);
        o.events.watermark({ topic: o.topic, partition: p.partition, highWatermark: String(p.high), position });
      }
      warned = false;
    } catch (err) {
      connected = undefined;
      if (!warned)
        o.log?.warn({ err: (err as Error).message }, 'reading the source topic end failed; lag may be stale');
      warned = true;
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void poll(), o.intervalMs ?? 5000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      if (connected) await connected.then(() => admin.disconnect()).catch(() => {});
    },
  };
}
