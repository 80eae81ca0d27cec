// The admin's topic offsets as the worker takes them: a partition whose leader cannot answer yet (the client's
// KafkaJS layer says -1) is refused, never read as an empty partition. The real broker's restart: worker-faults.
import type { KafkaJS } from '@confluentinc/kafka-javascript';
import { topicOffsets } from '../../pipelines/kafka/offsets.ts';
import { isRetriable } from '../../pipelines/retry.ts';

const adminAnswering = (offsets: Array<{ partition: number; high: string; low: string }>) =>
  ({ fetchTopicOffsets: async () => offsets.map((o) => ({ ...o, offset: o.high })) }) as unknown as KafkaJS.Admin;

describe('topicOffsets', () => {
  it('passes known offsets through, empty partitions included', async () => {
    const offsets = [
      { partition: 0, high: '10', low: '0' },
      { partition: 1, high: '0', low: '0' },
    ];
    await expect(topicOffsets(adminAnswering(offsets), 't')).resolves.toMatchObject(offsets);
  });

  it('refuses, as retriable, while a partition is unknown', async () => {
    const admin = adminAnswering([
      { partition: 0, high: '-1', low: '-1' },
      { partition: 1, high: '38293', low: '0' },
      { partition: 2, high: '-1', low: '-1' },
    ]);
    const err = await topicOffsets(admin, 'orders').catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'KAFKA_OFFSETS_UNKNOWN' });
    expect((err as Error).message).toContain('orders: the offsets of partition 0, 2 are not known yet');
    expect(isRetriable(err)).toBe(true);
  });
});
