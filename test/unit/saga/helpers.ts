// The example saga's inbox records and outbox reads, for the offline saga tests.
import type { TopologyTestDriver } from '../../../pipelines/testing/driver.ts';

/** An OrderPlaced that starts the saga of order `id`. */
export const placed = (id: string) => ({
  value: {
    eventId: `e-${id}`,
    eventType: 'OrderPlaced',
    timestamp: 1000,
    data: { orderId: id, customerId: 'c', items: [], totalAmount: 9.5 },
  },
});

/** A participant's reply of `type` to the command `commandId` (`<order>:<step>:<attempt>`). */
export const reply = (id: string, type: string, commandId: string, extra: Record<string, string> = {}) => ({
  value: {
    eventId: `r-${commandId}-${type}`,
    eventType: type,
    timestamp: 1100,
    data: { orderId: id, commandId, ...extra },
  },
});

/** The command ids the saga has sent of one command type. */
export const sent = (d: TopologyTestDriver, type: string) =>
  d.output(`fulfilment:${type}`).map((r) => (r as { value: { commandId: string } }).value.commandId);
