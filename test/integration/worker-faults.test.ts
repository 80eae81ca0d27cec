// The worker under faults, on the real stack: SIGTERM while busy, a broker outage. Outputs are counted by key
// against what the input holds. kill -9 and members joining and leaving are in the fault run (faults.test.ts).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { committedOffsets, endOffsets } from '../../pipelines/kafka/offsets.ts';
import { type OrderPlaced, orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';
import {
  countBy,
  createTopics,
  produceOrders,
  produceSnapshots,
  readTopic,
  spawnWorker,
  stack,
  stopWorkers,
  type TestTopics,
  testTopics,
  waitForLog,
} from './harness.ts';

jest.setTimeout(300_000);
afterEach(stopWorkers);

const TOPOLOGY = 'topologies/order-enrichment.yaml';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every order line the input holds, as `orderId/line`. */
function expectedLines(events: ReturnType<typeof orderLifecycleStream> extends Iterable<infer E> ? E[] : never) {
  return events
    .filter((e): e is OrderPlaced => e.eventType === 'OrderPlaced')
    .flatMap((e) => e.data.items.map((_, line) => `${e.data.orderId}/${line}`));
}

async function setup(name: string, orders: number) {
  const topics = testTopics(name);
  await createTopics(topics);
  await produceSnapshots(topics);
  const events = [...orderLifecycleStream(orders, { seed: orders })];
  await produceOrders(topics, events);
  return { topics, lines: expectedLines(events) };
}

async function outputLines(topics: TestTopics, expect: number) {
  // A killed worker's open transaction holds read_committed readers back until the broker aborts it (10 s timeout).
  const out = await readTopic(topics.ENRICHED_TOPIC, { expect, idleMs: 30_000 });
  return countBy(out, (r) => {
    const v = r.value as { orderId: string; line: number };
    return `${v.orderId}/${v.line}`;
  });
}

function expectExactlyOnce(counts: Map<string, number>, lines: string[]) {
  const missing = lines.filter((l) => !counts.has(l));
  const twice = [...counts].filter(([, n]) => n > 1);
  expect({ missing: missing.length, duplicated: twice.length, total: counts.size }).toEqual({
    missing: 0,
    duplicated: 0,
    total: lines.length,
  });
}

test('SIGTERM while busy: exits in time, with offsets committed for everything it wrote', async () => {
  const { topics, lines } = await setup('term', 40_000);
  const group = `term-${Date.now()}`;
  const w = spawnWorker(TOPOLOGY, { ...topics }, ['--group', group], 'term');
  await waitForLog(w, 'partitions assigned');
  await sleep(800);
  const sent = Date.now();
  w.child.kill('SIGTERM');
  expect(await w.exited).toBe(0);
  const took = Date.now() - sent;
  expect(took).toBeLessThan(20_000); // the shutdown bound
  // Everything written is covered by the commit: each output's source record is below its partition's offset.
  const committed = await committedOffsets(stack().conn.kafka, group, topics.ORDERS_TOPIC);
  const source = await readTopic(topics.ORDERS_TOPIC, { idleMs: 5000 });
  // Output lines come from OrderPlaced events only (the other events of an order share its key).
  const placedAt = new Map<string, { partition: number; offset: bigint }>();
  for (const r of source) {
    if ((r.value as OrderPlaced).eventType === 'OrderPlaced') {
      placedAt.set(r.key!, { partition: r.partition, offset: BigInt(r.offset) });
    }
  }
  const out = await readTopic(topics.ENRICHED_TOPIC, { idleMs: 5000 });
  expect(out.length).toBeGreaterThan(0);
  expect(out.length).toBeLessThan(lines.length); // stopped in mid-stream, not after the end
  const uncovered = out
    .map((r) => ({ key: r.key, src: placedAt.get(r.key!)! }))
    .filter(({ src }) => src.offset >= (committed.get(src.partition) ?? 0n));
  expect(uncovered).toEqual([]);
  // And a restart finishes the rest exactly once.
  const rest = spawnWorker(TOPOLOGY, { ...topics }, ['--group', group, '--until-caught-up'], 'term-rest');
  expect(await rest.exited).toBe(0);
  expectExactlyOnce(await outputLines(topics, lines.length), lines);
  console.log(`SIGTERM to exit: ${took} ms`);
});

const execFileAsync = promisify(execFile);

/** Not execFileSync: a blocked event loop would hold jest's own timeout back, and the logs with it. */
async function stackCommand(...args: string[]): Promise<number> {
  const started = Date.now();
  try {
    await execFileAsync('bash', ['deploy/local/stack', ...args], { encoding: 'utf8' });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`stack ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
  return Date.now() - started;
}

// The stall seen in CI: when the broker is away long enough (about 30 s from its stop to being ready again, which a
// loaded 2-core machine reaches even with a 2 s sleep: the broker then takes 20-30 s to come back), the coordinator
// drops the member on reload, and the batch in hand waited for a rebalance that the client hands over only once that
// batch returns. Now the worker either rides the outage out, or stops at once with KAFKA_MEMBER_LOST (its state in
// memory is ahead of what was committed) and a restart finishes the topic: no silent stall, nothing lost, nothing
// twice, either way. Which of the two happens depends on how long the broker really was away.
test.each([
  ['2 s', 2000],
  ['30 s', 30_000],
])(
  'a broker outage of %s in mid-run: no stall, nothing lost, nothing twice',
  async (name, downMs) => {
    const label = `outage-${downMs}`;
    const { topics, lines } = await setup(label, 40_000);
    const w = spawnWorker(TOPOLOGY, { ...topics }, ['--until-caught-up'], label);
    await waitForLog(w, 'partitions assigned');
    await sleep(500);
    const stopMs = await stackCommand('down', 'kafka');
    await sleep(downMs);
    const startMs = await stackCommand('up', 'kafka');
    console.log(`${name} outage: the broker took ${stopMs} ms to stop, ${startMs} ms to be healthy again`);
    const rc = await w.exited;
    if (rc !== 0) {
      expect(rc).toBe(1);
      expect(readFileSync(w.log, 'utf8')).toContain('the consumer group dropped this worker');
      const again = spawnWorker(TOPOLOGY, { ...topics }, ['--until-caught-up'], `${label}-restart`);
      expect(await again.exited).toBe(0);
    }
    console.log(`${name} outage: the first worker exited ${rc}`);
    expectExactlyOnce(await outputLines(topics, lines.length), lines);
  },
  // The stack's own bounds (15 s to stop, 120 s to be healthy) come on top of the work and the restart.
  480_000,
);

// A broker that has just come back answers a partition's offsets with -1 while its leader is loading: taken as an
// empty partition, a worker run --until-caught-up stopped with records unread (seen in this file's 2 s outage).
test('end offsets across a broker restart: refused or right, never a wrong end', async () => {
  const topics = testTopics('ends-restart');
  await createTopics(topics);
  await produceOrders(topics, [...orderLifecycleStream(2000, { seed: 7 })]);
  const conn = stack().conn.kafka;
  const shown = (ends: Map<number, bigint>) => [...ends].map(([p, end]) => `${p}:${end}`).join(' ');
  const want = shown(await endOffsets(conn, topics.ORDERS_TOPIC));
  let polling = true;
  const answers: string[] = [];
  let refused = 0;
  const poll = (async () => {
    while (polling) {
      await endOffsets(conn, topics.ORDERS_TOPIC).then(
        (ends) => answers.push(shown(ends)),
        () => refused++,
      );
      await sleep(50);
    }
  })();
  await stackCommand('down', 'kafka');
  await stackCommand('up', 'kafka');
  await sleep(3000);
  polling = false;
  await poll;
  console.log(`end offsets across a restart: ${answers.length} answers, ${refused} refused`);
  expect(answers.filter((a) => a !== want)).toEqual([]);
  expect(answers.length).toBeGreaterThan(0);
});
