// `compensateOnTimeout`: a step given up for lack of a reply may still have been done by its participant (the
// reply was lost); with the option its own compensation goes out first, once, and a late success is not undone
// twice. Offline, on the example saga with controlled time.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TopologyTestDriver } from '../../../pipelines/testing/driver.ts';
import { TOPOLOGIES, writeTopology } from '../topology/helpers.ts';
import { placed, reply, sent } from './helpers.ts';

const example = readFileSync(join(TOPOLOGIES, 'order-fulfilment.yaml'), 'utf8');

/** The example, its payment step compensated on timeout when `on` (the reserve step stays as it is). */
async function driver(on: boolean): Promise<TopologyTestDriver> {
  const marker = '          - name: payment\n';
  const at = example.indexOf('            retries: 2\n', example.indexOf(marker));
  const text = on ? `${example.slice(0, at)}            compensateOnTimeout: true\n${example.slice(at)}` : example;
  return TopologyTestDriver.load(writeTopology(text, 'order-fulfilment.yaml'), { env: {}, now: 0 });
}

async function timedOutPayment(on: boolean) {
  const d = await driver(on);
  d.pipe(placed('o1'));
  d.pipe(reply('o1', 'InventoryReserved', 'o1:reserve:1', { reservationId: 'r1' }));
  for (let i = 0; i < 3; i++) d.advanceWallClock('10s'); // the first attempt and 2 retries, none answered
  return d;
}

test('without it, a timed-out payment releases the inventory only', async () => {
  const d = await timedOutPayment(false);
  expect(sent(d, 'CapturePayment')).toEqual(['o1:payment:1', 'o1:payment:2', 'o1:payment:3']);
  expect(sent(d, 'RefundPayment')).toEqual([]);
  expect(sent(d, 'ReleaseInventory')).toEqual(['o1:reserve:undo:1']);
});

test('with it, the payment is refunded first, then the inventory released; a late charge is not refunded again', async () => {
  const d = await timedOutPayment(true);
  expect(sent(d, 'RefundPayment')).toEqual(['o1:payment:undo:1']);
  expect(sent(d, 'ReleaseInventory')).toEqual([]);
  d.pipe(reply('o1', 'PaymentCharged', 'o1:payment:3', { paymentId: 'p1' })); // the lost reply, late
  d.pipe(reply('o1', 'PaymentRefunded', 'o1:payment:undo:1'));
  expect(sent(d, 'ReleaseInventory')).toEqual(['o1:reserve:undo:1']);
  d.pipe(reply('o1', 'InventoryReleased', 'o1:reserve:undo:1'));
  expect(sent(d, 'RefundPayment')).toEqual(['o1:payment:undo:1']);
  const cancelled = d.output('fulfilment:OrderCancelled') as { value: { data: { reason: string } } }[];
  expect(cancelled.map((c) => c.value.data.reason)).toEqual([
    expect.stringMatching(/payment timed out \(3 attempts\)/),
  ]);
});
