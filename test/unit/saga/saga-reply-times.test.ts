// A saga's step latency: the time from a command's latest attempt (or a compensation) to the reply it awaited,
// kept by the step and rendered as the pipelines_saga_reply_duration_seconds histogram at scrape time.
import { join } from 'node:path';
import { createMetrics, METRICS } from '../../../pipelines/observe/metrics.ts';
import { TopologyTestDriver } from '../../../pipelines/testing/driver.ts';
import { TOPOLOGIES } from '../topology/helpers.ts';
import { placed, reply } from './helpers.ts';

test('each awaited reply is timed from its attempt; duplicates are not; compensations count as <name>:undo', async () => {
  const d = await TopologyTestDriver.load(join(TOPOLOGIES, 'order-fulfilment.yaml'), { env: {}, now: 0 });
  d.pipe(placed('o1'));
  d.advanceWallClock('2s');
  d.pipe(reply('o1', 'InventoryReserved', 'o1:reserve:1', { reservationId: 'r1' }));
  d.pipe(reply('o1', 'InventoryReserved', 'o1:reserve:1', { reservationId: 'r1' })); // a duplicate
  // The payment's first attempt times out (10 s); the reply to the second comes 3 s after it was sent.
  d.advanceWallClock('10s');
  d.advanceWallClock('3s');
  d.pipe(reply('o1', 'PaymentDeclined', 'o1:payment:2', { reason: 'card' }));
  d.advanceWallClock('500ms');
  d.pipe(reply('o1', 'InventoryReleased', 'o1:reserve:undo:1'));

  const metrics = createMetrics({ runtime: false });
  const t = metrics.topology('order-fulfilment');
  t.observeSteps(() => d.plan.observed());
  const text = await metrics.registry.metrics();
  const name = METRICS.sagaReplySeconds.name;
  const series = (suffix: string, action: string, outcome: string) =>
    Number(
      new RegExp(
        `^${name}_${suffix}\\{topology="order-fulfilment",step="fulfilment",action="${action}",outcome="${outcome}"\\} (\\S+)$`,
        'm',
      ).exec(text)?.[1],
    );
  expect(series('count', 'reserve', 'success')).toBe(1);
  expect(series('sum', 'reserve', 'success')).toBeCloseTo(2);
  expect(series('count', 'payment', 'failure')).toBe(1);
  expect(series('sum', 'payment', 'failure')).toBeCloseTo(3);
  expect(series('count', 'reserve:undo', 'success')).toBe(1);
  expect(series('sum', 'reserve:undo', 'success')).toBeCloseTo(0.5);
  // The buckets rendered are the catalogue's: the step and the metric agree on the bounds.
  const bounds = [...text.matchAll(new RegExp(`^${name}_bucket\\{[^}]*action="reserve"[^}]*le="([^"]+)"`, 'gm'))].map(
    (m) => m[1],
  );
  expect(bounds).toEqual([...METRICS.sagaReplySeconds.buckets!.map(String), '+Inf']);
  expect(
    Number(
      /le="2.5"\} (\S+)$/m.exec(
        text
          .split('\n')
          .filter((l) => l.includes('action="reserve"'))
          .join('\n'),
      )?.[1],
    ),
  ).toBe(1);
});
