// Scale-out on the real stack: several workers per topology over one ClickHouse, members added, removed, killed
// and stalled during the stream (scale-out.ts); every read model equals the load generator's oracle.
import { scaleOut } from './scale-out.ts';

test('1 to 3 workers and back, kills and a stalled member: every read model exact', async () => {
  const lines: string[] = [];
  const r = await scaleOut({
    orders: Number(process.env.SCALE_ORDERS ?? 105_000),
    seed: 3,
    rate: 6000,
    changes: 14,
    maxMembers: 3,
    log: (l) => lines.push(l),
  }).catch((err: Error) => {
    // What happened to the members, when the run did not come to an end.
    console.log(lines.join('\n'));
    throw err;
  });
  const sorted = [...r.moves].sort((a, b) => a - b);
  console.log(
    [
      `${r.events} events; changes ${JSON.stringify(r.changes)}; ${r.fenced} fenced`,
      `partition moves: ${sorted.length}, median ${Math.round(sorted[sorted.length >> 1] ?? 0)} ms, max ${Math.round(sorted.at(-1) ?? 0)} ms`,
      ...Object.entries(r.models).map(([m, t]) => `${m}: ${JSON.stringify(t)}`),
      ...lines,
    ].join('\n'),
  );
  expect(r.events).toBeGreaterThanOrEqual(Number(process.env.SCALE_ORDERS ?? 105_000) * 2.5);
  for (const [model, tally] of Object.entries(r.models))
    expect({ model, lost: tally.lost, duplicated: tally.duplicated, exact: tally.exact }).toEqual({
      model,
      lost: 0,
      duplicated: 0,
      exact: true,
    });
  expect(Object.keys(r.changes).some((k) => k.endsWith('kill'))).toBe(true);
}, 900_000);
