// A saga's mistakes, each located at file:line:col in the topology, on the example saga with one change each.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkFile } from '../../../pipelines/compile/compile.ts';
import { TOPOLOGIES, writeTopology } from '../topology/helpers.ts';

const example = readFileSync(join(TOPOLOGIES, 'order-fulfilment.yaml'), 'utf8');

const cases: Array<{
  name: string;
  from: string;
  to: string;
  code: string;
  message: RegExp;
  marker: string;
  hint?: RegExp;
}> = [
  {
    name: 'a reply type the source does not carry',
    from: 'success: { InventoryReserved:',
    to: 'success: { InventoryReservd:',
    code: 'ref-unknown-event-type',
    message: /no event type 'InventoryReservd' on the source/,
    marker: 'InventoryReservd',
    hint: /InventoryReserved/,
  },
  {
    name: 'a start type the source does not carry',
    from: 'start: OrderPlaced',
    to: 'start: OrderPlacd',
    code: 'ref-unknown-event-type',
    message: /no event type 'OrderPlacd'/,
    marker: 'start: OrderPlacd',
  },
  {
    name: 'one reply type for two steps',
    from: 'failure: { PaymentDeclined: { reason: event.data.reason } }',
    to: 'failure: { InventoryRejected: { reason: event.data.reason } }',
    code: 'saga-invalid',
    message: /reply type 'InventoryRejected' is used twice/,
    marker: 'failure: { InventoryRejected: { reason: event.data.reason } }',
  },
  {
    name: 'a data field the command schema does not have',
    from: 'data: { orderId: state.orderId, reservationId: state.reservationId }',
    to: 'data: { orderId: state.orderId, reservationID: state.reservationId }',
    code: 'sink-unknown-column',
    message: /ReleaseInventory's data has no field 'reservationID'/,
    marker: 'reservationID',
    hint: /reservationId/,
  },
  {
    name: 'a required data field not set',
    from: 'data: { orderId: state.orderId, customerId: state.customerId, amount: state.amount }',
    to: 'data: { orderId: state.orderId, amount: state.amount }',
    code: 'sink-unknown-column',
    message: /field 'data.customerId' of CapturePayment is not set/,
    marker: 'data: { orderId: state.orderId, amount: state.amount }',
  },
  {
    name: 'a message type that is not its schema',
    from: 'type: RequestShipment',
    to: 'type: ShipOrder',
    code: 'saga-invalid',
    message: /message type 'ShipOrder' but its schema is the record 'RequestShipment'/,
    marker: 'type: ShipOrder',
  },
  {
    name: 'a state field that does not exist, in a command',
    from: 'amount: state.amount }\n            success: { PaymentCharged',
    to: 'amount: state.amont }\n            success: { PaymentCharged',
    code: 'expr-unknown-field',
    message: /no field 'amont'/,
    marker: 'state.amont',
  },
  {
    name: 'two steps with one name',
    from: '- name: shipment',
    to: '- name: payment',
    code: 'saga-invalid',
    message: /step name 'payment' is used twice/,
    marker: '- name: payment',
  },
];

describe('saga validation', () => {
  it('the example is valid', () => {
    const r = checkFile(writeTopology(example));
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  });

  it.each(cases)('$name', (c) => {
    expect(example).toContain(c.from);
    const text = example.replace(c.from, c.to);
    const r = checkFile(writeTopology(text), { env: {} });
    const found = r.diagnostics.find((d) => d.code === c.code && c.message.test(d.message));
    expect(found).toBeDefined();
    // Markers may sit on several lines (a name used twice): the diagnostic is on one of them.
    const lines = text.split('\n');
    const candidates = lines.flatMap((l, i) => (l.includes(c.marker) ? [i + 1] : []));
    expect(candidates).toContain(found!.line);
    expect(found!.column).toBeGreaterThan(1);
    if (c.hint) expect(found!.hint).toMatch(c.hint);
  });
});
