// The README's first command (its last step, `pipelines demo`) on the real stack: a small order stream through the
// example topologies; the read models it prints must match counts made here from the same generated stream.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';

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
