// The fault run's short version (test/faults/run.ts is the long one): each fault in a phase of its own while
// loadgen writes, two exactly-once topologies consuming under supervision; every read model and the enriched topic
// compared with what the generated stream must give, every poison record dead-lettered once per topology.
import { runFaults } from '../faults/suite.ts';
import { stopWorkers } from './harness.ts';

jest.setTimeout(600_000);
afterEach(stopWorkers);

test('kill -9, registry down, a member joining and leaving, a slow sink: nothing lost, nothing twice', async () => {
  const results = await runFaults({
    orders: 2000,
    seed: 11,
    rate: 2000,
    outageSeconds: 5,
    kills: 2,
    faults: ['kill-9', 'registry-down', 'join-leave', 'slow-sink'],
    log: (line) => console.log(line),
  });
  for (const r of results) {
    expect({ fault: r.fault, injected: r.injected > 0, lost: r.lost, duplicated: r.duplicated }).toEqual({
      fault: r.fault,
      injected: true,
      lost: 0,
      duplicated: 0,
    });
    expect({ fault: r.fault, exact: Object.values(r.models).every((t) => t.exact) }).toEqual({
      fault: r.fault,
      exact: true,
    });
    const { expected, analytics, enrichment } = r.deadLettered;
    expect({ fault: r.fault, analytics, enrichment }).toEqual({
      fault: r.fault,
      analytics: expected,
      enrichment: expected,
    });
  }
  expect(results.find((r) => r.fault === 'kill-9')?.exits).toBe(2);
});
