// The end of the source topic, read every few seconds by an admin client: the lag keeps moving while the
// worker consumes nothing (paused on a failing sink, or stuck), which is when it matters most.
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
  /** The topic's ends and the group's commits (kafka/offsets.ts `topicPositions`); closed by `stop`. */
  positions: {
    read(): Promise<Array<{ partition: number; low: bigint; high: bigint; committed: bigint | undefined }>>;
    close(): Promise<void>;
  };
  topic: string;
  start: 'earliest' | 'latest';
  events: Pick<PipelineEvents, 'watermark'>;
  intervalMs?: number;
  log?: { warn(o: object, msg: string): void };
}): WatermarkWatch {
  let busy = false;
  let warned = false;
  const poll = async () => {
    if (busy) return;
    busy = true;
    try {
      for (const p of await o.positions.read()) {
        const position = p.committed ?? (o.start === 'earliest' ? p.low : p.high);
        o.events.watermark({
          topic: o.topic,
          partition: p.partition,
          highWatermark: String(p.high),
          position: Number(position),
        });
      }
      warned = false;
    } catch (err) {
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
      await o.positions.close();
    },
  };
}
