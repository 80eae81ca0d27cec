// The participants of the order fulfilment saga, for the demo and the tests: inventory, payment and shipping
// answer each command with a success or a failure, decided by a seeded hash of the saga and the command type (so
// a resent command gets the same answer), and drop a share of the replies (decided per attempt) so that the saga
// times out and retries. Compensations always succeed: a participant must be able to undo what it did.
import type { ModuleFunction } from '../../pipelines/steps/module.ts';

interface Command {
  commandId: string;
  commandType: string;
  sagaId: string;
  attempt: number;
  timestamp: number;
  data: { orderId: string; [field: string]: unknown };
}

/** Uniform in [0, 1) from a string (FNV-1a, then a final avalanche). */
export function chance(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return (h >>> 0) / 2 ** 32;
}

const ANSWERS: Record<string, { ok: string; fail?: string; field?: string; undo?: boolean }> = {
  ReserveInventory: { ok: 'InventoryReserved', fail: 'InventoryRejected', field: 'reservationId' },
  CapturePayment: { ok: 'PaymentCharged', fail: 'PaymentDeclined', field: 'paymentId' },
  RequestShipment: { ok: 'ShipmentScheduled', fail: 'ShipmentRejected', field: 'shipmentId' },
  ReleaseInventory: { ok: 'InventoryReleased', undo: true },
  RefundPayment: { ok: 'PaymentRefunded', undo: true },
};

/** Whether the participant refuses this saga's command (the same answer for every attempt). */
export function fails(seed: string, sagaId: string, commandType: string, rate: number): boolean {
  const a = ANSWERS[commandType];
  return a?.fail !== undefined && chance(`${seed}|${sagaId}|${commandType}`) < rate;
}

export const answer: ModuleFunction = (vars) => {
  const c = vars.event as Command;
  const a = ANSWERS[c.commandType];
  if (!a) return null;
  const seed = String(vars.seed);
  if (chance(`${seed}|lost|${c.commandId}`) < Number(vars.lossRate)) return null;
  const failed = fails(seed, c.sagaId, c.commandType, Number(vars.failureRate));
  const type = failed ? a.fail! : a.ok;
  const data: Record<string, unknown> = { orderId: c.data.orderId, commandId: c.commandId };
  if (failed) data.reason = `${c.commandType} refused by the participant`;
  else if (a.field) data[a.field] = `${a.field.replace('Id', '')}-${c.sagaId}`;
  return { eventId: `${c.commandId}:reply`, eventType: type, timestamp: c.timestamp, data };
};
