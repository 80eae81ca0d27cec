// The README's first command (its last step, `pipelines demo`) on the real stack: a small order stream through the
// example topologies; the read models it prints must match counts made here from the same generated stream.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { orderLifecycleStream, orderPlacedStream } from '../../pipelines/loadgen/orders.ts';
import { fails } from '../../topologies/modules/participants.ts';

jest.setTimeout(300_000);

test('pipelines demo: order-status and order-analytics run on a generated stream, their read models printed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pipelines-demo-'));
  try {
    const r = spawnSync(process.execPath, ['pipelines/cli/main.ts', 'demo', '--orders', '3000', '--seed', '7'], {
      env: { ...process.env, PIPELINES_DEMO_DIR: dir },
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // Each order's last state as order_summary keeps it (the lifecycle's maximum: a cancelled order stays so).
    const rank = { OrderPlaced: 0, PaymentCaptured: 1, OrderShipped: 2, OrderCancelled: 3 } as const;
    const names = ['PLACED', 'PAID', 'SHIPPED', 'CANCELLED'];
    const state = new Map<string, number>();
    let events = 0;
    let paid = 0;
    for (const e of orderLifecycleStream(3000, { seed: 7 })) {
      events++;
      if (e.eventType === 'PaymentCaptured') paid++;
      state.set(e.data.orderId, Math.max(state.get(e.data.orderId) ?? 0, rank[e.eventType]));
    }
    expect(r.stdout).toContain(`produced ${events.toLocaleString('en-US')} order events (3,000 orders`);
    const byStatus = new Map<string, number>();
    for (const s of state.values()) byStatus.set(names[s]!, (byStatus.get(names[s]!) ?? 0) + 1);
    for (const [status, n] of byStatus) {
      expect(r.stdout).toMatch(new RegExp(`^  ${status} +${n.toLocaleString('en-US')} `, 'm'));
    }
    expect(r.stdout).toMatch(new RegExp(`order funnel: placed 3,000 -> paid ${paid.toLocaleString('en-US')} \\(`));
    // Every placed order is in the revenue per segment, whatever its segment.
    const segmentOrders = [...r.stdout.matchAll(/^ {2}(consumer|smb|enterprise|unknown) +[\d,.]+ +([\d,]+) /gm)].map(
      (m) => Number(m[2]!.replace(/,/g, '')),
    );
    expect(segmentOrders.reduce((a, b) => a + b, 0)).toBe(3000);
    expect(r.stdout).toMatch(
      /customer_ltv: the top 5 customers by lifetime value\n {2}customer +orders +revenue\n {2}C\d{5}/,
    );
    expect(r.stdout).toContain(`PIPELINES_CLICKHOUSE_PATH=`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pipelines saga demo: every saga ends as the participants decided, and one compensated saga is shown', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pipelines-saga-demo-'));
  try {
    const args = ['saga', 'demo', '--orders', '200', '--failure-rate', '0.25', '--loss-rate', '0', '--seed', '3'];
    const r = spawnSync(process.execPath, ['pipelines/cli/main.ts', ...args], {
      env: { ...process.env, PIPELINES_DEMO_DIR: dir },
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // The oracle: the participants' decision per saga and command (nothing lost, so no timeout).
    const expected = new Map<string, number>();
    for (const o of orderPlacedStream(200, { seed: 3 })) {
      const id = o.data.orderId;
      const outcome = fails('3', id, 'ReserveInventory', 0.25)
        ? 'OrderCancelled: reserve failed: InventoryRejected'
        : fails('3', id, 'CapturePayment', 0.25)
          ? 'OrderCancelled: payment failed: PaymentDeclined'
          : fails('3', id, 'RequestShipment', 0.25)
            ? 'OrderCancelled: shipment failed: ShipmentRejected'
            : 'OrderConfirmed';
      expected.set(outcome, (expected.get(outcome) ?? 0) + 1);
    }
    for (const [outcome, n] of expected) expect(r.stdout).toMatch(new RegExp(`^  ${outcome} +${n}$`, 'm'));
    expect(r.stdout).toMatch(/^saga O\d+ \(order-fulfilment, step fulfilment\): compensated: /m);
    expect(r.stdout).toMatch(/ out +\S+\.outcomes +\d+@\d+ +OrderCancelled /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
