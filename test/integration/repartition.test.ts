// Repartitioning on the real stack: order-totals (an onClose window by segment and a fold by customer, each after
// a repartition step) as 1 to 3 workers, members added, removed and killed during the stream (scale-out.ts);
// every final row equals the load generator's oracle.
import { scaleOut } from './scale-out.ts';

test('order-totals with 1 to 3 workers and kills: the window by segment and the fold by customer are exact', async () => {
  const lines: string[] = [];
  const orders = Number(process.env.REPARTITION_ORDERS ?? 40_000);
  const r = await scaleOut({
    orders,
    seed: 5,
    rate: 5000,
    changes: 8,
    maxMembers: 3,
    topologies: ['order-totals'],
    log: (l) => {
      lines.push(l);
      if (process.env.TRACE_SCALE) process.stderr.write(`${l}\n`);
    },
  }).catch((err: Error) => {
    // What happened to the members, when the run did not come to an end.
    console.log(lines.join('\n'));
    throw err;
  });
  console.log(
    [
      `${r.events} events; changes ${JSON.stringify(r.changes)}; windows still open at the end ${JSON.stringify(r.open)}`,
      ...Object.entries(r.models).map(([m, t]) => `${m}: ${JSON.stringify(t)}`),
      ...lines,
    ].join('\n'),
  );
  expect(r.events).toBeGreaterThanOrEqual(orders * 2.5);
  expect(Object.keys(r.models).sort()).toEqual(['customer_totals', 'segment_revenue_final_1m']);
  for (const [model, tally] of Object.entries(r.models))
    expect({ model, lost: tally.lost, duplicated: tally.duplicated, exact: tally.exact }).toEqual({
      model,
      lost: 0,
      duplicated: 0,
      exact: true,
    });
  // The closing orders (scale-out.ts) moved event time past every window of the stream: each closed, each exact.
  expect(r.open.segment_revenue_final_1m).toBe(0);
  expect(r.models.segment_revenue_final_1m!.expected).toBe(orders);
  expect(Object.keys(r.changes).some((k) => k.endsWith('kill'))).toBe(true);
}, 900_000);
