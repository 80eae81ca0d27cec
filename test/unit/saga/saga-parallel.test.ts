// A parallel saga step (reserve and pay at once) and the instance state across a changelog round trip, offline on
// the test driver: both commands go out together, the step completes only with both replies, a failure of one
// branch compensates the branch that succeeded, and a branch that succeeds after the failure is undone too.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TopologyTestDriver } from '../../../pipelines/testing/driver.ts';
import { TOPOLOGIES, writeTopology } from '../topology/helpers.ts';
import { placed, reply, sent } from './helpers.ts';

const example = readFileSync(join(TOPOLOGIES, 'order-fulfilment.yaml'), 'utf8');

/** The example with its first two steps run as one parallel step `prepare` (branches reserve and payment). */
function parallelSaga(): string {
  const from = example.indexOf('          - name: reserve');
  const to = example.indexOf('          - name: shipment');
  const prepare = `          - name: prepare
            timeout: 10s
            retries: 1
            parallel:
              - name: reserve
                command:
                  type: ReserveInventory
                  topic: orders.commands
                  schema: schemas/saga/ReserveInventory.avsc
                  data: { orderId: state.orderId, items: state.items }
                success: { InventoryReserved: { reservationId: event.data.reservationId } }
                failure: { InventoryRejected: { reason: event.data.reason } }
                compensate:
                  type: ReleaseInventory
                  topic: orders.commands
                  schema: schemas/saga/ReleaseInventory.avsc
                  data: { orderId: state.orderId, reservationId: state.reservationId }
                  success: { InventoryReleased: }
              - name: payment
                command:
                  type: CapturePayment
                  topic: orders.commands
                  schema: schemas/saga/CapturePayment.avsc
                  data: { orderId: state.orderId, customerId: state.customerId, amount: state.amount }
                success: { PaymentCharged: { paymentId: event.data.paymentId } }
                failure: { PaymentDeclined: { reason: event.data.reason } }
                compensate:
                  type: RefundPayment
                  topic: orders.commands
                  schema: schemas/saga/RefundPayment.avsc
                  data: { orderId: state.orderId, paymentId: state.paymentId, amount: state.amount }
                  success: { PaymentRefunded: }
`;
  return example.slice(0, from) + prepare + example.slice(to);
}

async function driver(): Promise<TopologyTestDriver> {
  return TopologyTestDriver.load(writeTopology(parallelSaga(), 'order-fulfilment.yaml'), { env: {} });
}

describe('a parallel saga step', () => {
  it('is a valid topology', async () => {
    const d = await driver();
    expect(d.plan.steps.map((s) => s.kind)).toEqual(['saga']);
  });

  it('sends both commands at once and goes on only with both replies', async () => {
    const d = await driver();
    d.pipe(placed('o1'));
    expect(sent(d, 'ReserveInventory')).toEqual(['o1:prepare.reserve:1']);
    expect(sent(d, 'CapturePayment')).toEqual(['o1:prepare.payment:1']);
    d.pipe(reply('o1', 'PaymentCharged', 'o1:prepare.payment:1', { paymentId: 'p1' }));
    expect(sent(d, 'RequestShipment')).toEqual([]);
    d.pipe(reply('o1', 'InventoryReserved', 'o1:prepare.reserve:1', { reservationId: 'r1' }));
    expect(sent(d, 'RequestShipment')).toEqual(['o1:shipment:1']);
  });

  it('a failed branch compensates the one that succeeded; a later success of the other is undone as well', async () => {
    const d = await driver();
    d.pipe(placed('o2'));
    d.pipe(reply('o2', 'InventoryReserved', 'o2:prepare.reserve:1', { reservationId: 'r2' }));
    d.pipe(reply('o2', 'PaymentDeclined', 'o2:prepare.payment:1', { reason: 'card' }));
    expect(sent(d, 'ReleaseInventory')).toEqual(['o2:prepare.reserve:undo:1']);
    expect(sent(d, 'RefundPayment')).toEqual([]);
    d.pipe(reply('o2', 'InventoryReleased', 'o2:prepare.reserve:undo:1'));
    expect(d.output('fulfilment:OrderCancelled')).toHaveLength(1);

    d.pipe(placed('o3'));
    d.pipe(reply('o3', 'InventoryRejected', 'o3:prepare.reserve:1', { reason: 'none left' }));
    // Nothing had completed: cancelled at once, no compensation.
    expect(d.output('fulfilment:OrderCancelled')).toHaveLength(2);
    // The payment went through after all: it is refunded, once.
    d.pipe(reply('o3', 'PaymentCharged', 'o3:prepare.payment:1', { paymentId: 'p3' }));
    d.pipe(reply('o3', 'PaymentCharged', 'o3:prepare.payment:1', { paymentId: 'p3' }));
    expect(sent(d, 'RefundPayment')).toEqual(['o3:prepare.payment:undo:1']);
    expect((d.output('fulfilment:RefundPayment')[0] as { value: { data: unknown } }).value.data).toMatchObject({
      paymentId: 'p3',
    });
  });

  it('a retry resends only the branches still waiting', async () => {
    const d = await driver();
    d.pipe(placed('o4'));
    d.pipe(reply('o4', 'InventoryReserved', 'o4:prepare.reserve:1', { reservationId: 'r4' }));
    d.advanceWallClock('10s');
    expect(sent(d, 'CapturePayment')).toEqual(['o4:prepare.payment:1', 'o4:prepare.payment:2']);
    expect(sent(d, 'ReserveInventory')).toEqual(['o4:prepare.reserve:1']);
  });
});

describe('saga state across the changelog', () => {
  it('an instance restored from its changelog entry goes on as the original would', async () => {
    const a = await TopologyTestDriver.load(join(TOPOLOGIES, 'order-fulfilment.yaml'), { env: {} });
    a.plan.trackChanges();
    a.pipe(placed('o5'));
    a.pipe(reply('o5', 'InventoryReserved', 'o5:reserve:1', { reservationId: 'r5' }));
    const entries = JSON.parse(JSON.stringify(a.plan.drainChanges())) as Array<[string, unknown]>;
    expect(entries.map(([k]) => k)).toEqual(['fulfilment|o5']);

    const b = await TopologyTestDriver.load(join(TOPOLOGIES, 'order-fulfilment.yaml'), { env: {} });
    b.plan.loadState(entries);
    for (const d of [a, b]) {
      d.advanceWallClock('10s');
      d.pipe(reply('o5', 'PaymentCharged', 'o5:payment:2', { paymentId: 'p5' }));
    }
    expect(sent(b, 'CapturePayment')).toEqual(['o5:payment:2']);
    expect(sent(a, 'CapturePayment').slice(1)).toEqual(sent(b, 'CapturePayment'));
    expect(b.output('fulfilment:RequestShipment')).toEqual(a.output('fulfilment:RequestShipment'));
  });
});
