// The disorder of real streams, added to the generated one: seeded, each share about what was asked, nothing
// dropped, late events minutes behind and swapped ones seconds apart, as the topologies' lateness expects.
import {
  type DisorderCounts,
  type DisorderShares,
  LATE_MAX_MS,
  LATE_MIN_MS,
  SWAP_WITHIN_MS,
  withDisorder,
} from '../../pipelines/loadgen/disorder.ts';
import { type OrderEvent, orderLifecycleStream } from '../../pipelines/loadgen/orders.ts';

// 3600 orders, one a second: about 10k events over an hour, long enough for late events to come due.
const input = [...orderLifecycleStream(3600, { seed: 3, stepMs: 1000 })];

function run(shares: DisorderShares, seed = 7) {
  const counts = {} as DisorderCounts;
  const out = [...withDisorder(input, shares, seed, counts)];
  return { out, counts };
}

/** For each event written: how far behind the latest event written before it (negative: ahead of all). */
function behind(events: readonly OrderEvent[]): number[] {
  let latest = Number.NEGATIVE_INFINITY;
  return events.map((e) => {
    const lag = latest - e.timestamp;
    latest = Math.max(latest, e.timestamp);
    return lag;
  });
}

const ids = (events: readonly OrderEvent[]) => events.map((e) => e.eventId).sort();

test('the input is what the checks below assume: about 10k events, in event-time order', () => {
  expect(input.length).toBeGreaterThan(10_000);
  expect(behind(input).every((lag) => lag <= 0)).toBe(true);
});

test('no shares: the events as they came', () => {
  const { out, counts } = run({});
  expect(out).toEqual(input);
  expect(counts).toEqual({ duplicate: 0, late: 0, outOfOrder: 0, v2: 0 });
});

test('seeded: the same seed gives the same stream and counts, another seed another stream', () => {
  const shares = { duplicate: 0.02, late: 0.02, outOfOrder: 0.05, v2: 0.3 };
  expect(run(shares, 11)).toEqual(run(shares, 11));
  expect(run(shares, 12).out).not.toEqual(run(shares, 11).out);
});

test('each share is roughly respected (±30%), v2 as a share of the OrderPlaced events', () => {
  const shares = { duplicate: 0.03, late: 0.03, outOfOrder: 0.05, v2: 0.3 };
  const { counts } = run(shares);
  const placed = input.filter((e) => e.eventType === 'OrderPlaced').length;
  const near = (n: number, want: number) => {
    expect(n).toBeGreaterThan(want * 0.7);
    expect(n).toBeLessThan(want * 1.3);
  };
  near(counts.duplicate, shares.duplicate * input.length);
  near(counts.late, shares.late * input.length);
  near(counts.outOfOrder, shares.outOfOrder * input.length);
  near(counts.v2, shares.v2 * placed);
});

test('nothing is dropped: the event ids are those of the input plus one more of each duplicate', () => {
  const { out, counts } = run({ duplicate: 0.03, late: 0.03, outOfOrder: 0.05, v2: 0.3 });
  const seen = new Map<string, OrderEvent[]>();
  for (const e of out) seen.set(e.eventId, [...(seen.get(e.eventId) ?? []), e]);
  const twice = [...seen.values()].filter((copies) => copies.length === 2);
  expect(twice).toHaveLength(counts.duplicate);
  expect([...seen.values()].every((copies) => copies.length <= 2)).toBe(true);
  for (const [a, b] of twice) expect(b).toEqual(a); // a retry: the same content
  expect(ids(out)).toEqual([...ids(input), ...twice.map(([e]) => e!.eventId)].sort());
  expect(out.length).toBe(input.length + counts.duplicate);
});

test('a duplicate comes again within the next ~50 events', () => {
  const { out, counts } = run({ duplicate: 0.05 });
  const first = new Map<string, number>();
  const gaps: number[] = [];
  out.forEach((e, i) => {
    const at = first.get(e.eventId);
    if (at === undefined) first.set(e.eventId, i);
    else gaps.push(i - at);
  });
  expect(gaps).toHaveLength(counts.duplicate);
  // Not before the next event, and at most 50 events on (a few more where other repeats come due at once).
  expect(Math.min(...gaps)).toBeGreaterThanOrEqual(1);
  expect(Math.max(...gaps)).toBeLessThanOrEqual(55);
});

test('late events come 2 to 10 minutes of event time behind the latest before them, timestamps unchanged', () => {
  const { out, counts } = run({ late: 0.03 });
  expect(ids(out)).toEqual(ids(input));
  const original = new Map(input.map((e) => [e.eventId, e]));
  for (const e of out) expect(e).toBe(original.get(e.eventId)); // the very event: nothing rewritten
  const lags = behind(out);
  // Counted: the events written 2 to 10 minutes behind.
  expect(lags.filter((lag) => lag >= LATE_MIN_MS && lag <= LATE_MAX_MS).length).toBe(counts.late);
  // Before the last 10 minutes of the stream, an event is either late by that much or not behind by seconds even.
  const end = input.at(-1)!.timestamp;
  out.forEach((e, i) => {
    const lag = lags[i]!;
    if (e.timestamp < end - LATE_MAX_MS && lag > SWAP_WITHIN_MS) {
      expect(lag).toBeGreaterThanOrEqual(LATE_MIN_MS);
      expect(lag).toBeLessThanOrEqual(LATE_MAX_MS);
    }
  });
  // None is later than that; those still held when the stream ends come last, less late, uncounted.
  expect(Math.max(...lags)).toBeLessThanOrEqual(LATE_MAX_MS);
  expect(lags.slice(-5).every((lag) => lag > 0)).toBe(true);
});

test('late events go first when a gap in event time would put them more than 10 minutes behind', () => {
  const gappy = [...orderLifecycleStream(200, { seed: 1, stepMs: 20_000 })];
  const counts = {} as DisorderCounts;
  const out = [...withDisorder(gappy, { late: 0.2 }, 5, counts)];
  expect(ids(out)).toEqual(ids(gappy));
  expect(Math.max(...behind(out))).toBeLessThanOrEqual(LATE_MAX_MS);
  expect(counts.late).toBeGreaterThan(0);
});

test('out of order: neighbours swapped, less than 5 s of event time apart', () => {
  const { out, counts } = run({ outOfOrder: 0.05 });
  let swaps = 0;
  for (let i = 0; i < input.length; i++) {
    if (out[i] === input[i]) continue;
    expect([out[i], out[i + 1]]).toEqual([input[i + 1], input[i]]);
    expect(Math.abs(input[i + 1]!.timestamp - input[i]!.timestamp)).toBeLessThan(SWAP_WITHIN_MS);
    swaps++;
    i++;
  }
  expect(swaps).toBe(counts.outOfOrder);
  expect(Math.max(...behind(out))).toBeLessThan(SWAP_WITHIN_MS);
});

test('v2: OrderPlaced events get a channel (web, app or store), copies: the input is left as it was', () => {
  const { out, counts } = run({ v2: 0.5 });
  const withChannel = out.filter((e) => e.eventType === 'OrderPlaced' && e.data.channel !== undefined);
  expect(withChannel).toHaveLength(counts.v2);
  expect(new Set(withChannel.map((e) => e.eventType === 'OrderPlaced' && e.data.channel))).toEqual(
    new Set(['web', 'app', 'store']),
  );
  expect(input.some((e) => e.eventType === 'OrderPlaced' && 'channel' in e.data)).toBe(false);
  // Everything else about them is the input's, key (order id) included.
  expect(
    out.map((e) => (e.eventType === 'OrderPlaced' ? { ...e, data: { ...e.data, channel: undefined } } : e)),
  ).toEqual(input.map((e) => (e.eventType === 'OrderPlaced' ? { ...e, data: { ...e.data, channel: undefined } } : e)));
});

test('the kinds share one draw: the same events are touched whatever the other shares', () => {
  const alone = run({ duplicate: 0.02 }).counts.duplicate;
  expect(run({ duplicate: 0.02, v2: 0.4 }).counts.duplicate).toBe(alone);
});

test('counts are filled in from zero, whatever the object held', () => {
  const counts: DisorderCounts = { duplicate: 5, late: 5, outOfOrder: 5, v2: 5 };
  for (const _ of withDisorder(input.slice(0, 10), {}, 1, counts));
  expect(counts).toEqual({ duplicate: 0, late: 0, outOfOrder: 0, v2: 0 });
});

test('shares out of 0..1, or adding up to more than 1, are refused', () => {
  expect(() => [...withDisorder(input, { late: 1.5 })]).toThrow(RangeError);
  expect(() => [...withDisorder(input, { v2: -0.1 })]).toThrow(RangeError);
  expect(() => [...withDisorder(input, { duplicate: 0.6, outOfOrder: 0.6 })]).toThrow(RangeError);
});
