// `topics apply` on the real broker: create, grow partitions, leave alone, refuse to shrink.
import { connectionsFrom } from '../../pipelines/kafka/connection.ts';
import { applyTopics } from '../../pipelines/kafka/topics.ts';
import { kafkaClient } from './harness.ts';

jest.setTimeout(60_000);

test('creates, grows and leaves topics as declared, and refuses to shrink', async () => {
  const conn = connectionsFrom(process.env).kafka;
  const name = `topics.apply.${Date.now()}`;
  const spec = { name, partitions: 2, replicas: 3, retentionMs: 86_400_000, cleanup: 'delete' as const, minInSync: 2 };

  const dry = await applyTopics(conn, [spec], { maxReplicas: 1, dryRun: true });
  expect(dry).toEqual([expect.objectContaining({ topic: name, action: 'create' })]);
  expect(dry[0]!.detail).toContain('1 replicas (capped from 3');

  expect((await applyTopics(conn, [spec], { maxReplicas: 1 }))[0]!.action).toBe('create');
  expect((await applyTopics(conn, [{ ...spec, partitions: 4 }], { maxReplicas: 1 }))[0]).toMatchObject({
    action: 'add-partitions',
    detail: '2 → 4 partitions',
  });
  expect((await applyTopics(conn, [{ ...spec, partitions: 4 }], { maxReplicas: 1 }))[0]!.action).toBe('unchanged');
  expect((await applyTopics(conn, [spec], { maxReplicas: 1 }))[0]!.action).toBe('conflict');

  // Independent look at the broker's metadata.
  const admin = kafkaClient().admin();
  await admin.connect();
  const [meta] = (await admin.fetchTopicMetadata({ topics: [name] })) as unknown as Array<{ partitions: unknown[] }>;
  await admin.disconnect();
  expect(meta!.partitions).toHaveLength(4);
});
