// What a real order stream does that the generated one does not: producer retries seen twice, events that arrive
// minutes late, neighbours swapped, and a newer schema version among the old. Deterministic for a seed, so that a
// fault-injection run can be repeated and its expected results computed from exactly what was written.
//
// Events keep their key (the order id), yet holding one back or swapping two can put the events of one order out
// of their lifecycle order (a payment before its order): intended, that is what consumers must cope with.
import { type OrderEvent, seededRandom } from './orders.ts';

/** The share (0..1) of the events each kind of disorder touches; v2 is a share of the OrderPlaced events. */
export interface DisorderShares {
  /** Sent again (same eventId, same content) within the next ~50 events: a producer retry. */
  duplicate?: number;
  /** Held back until the stream is 2–10 minutes of event time further, its timestamp unchanged. */
  late?: number;
  /** Swapped with the next event, when that one is less than 5 s of event time away. */
  outOfOrder?: number;
  /** An OrderPlaced written with v2 of its schema: `data.channel` is one of web, app, store. */
  v2?: number;
}

/** How many events each kind touched, as written. */
export interface DisorderCounts {
  duplicate: number;
  /** Events written 2–10 minutes behind the latest event before them (held ones still due at the end are not). */
  late: number;
  /** Pairs swapped. */
  outOfOrder: number;
  v2: number;
}

export const DUPLICATE_WITHIN = 50;
/** How far behind a late event arrives; well within the example topologies' allowed lateness of 7 days. */
export const LATE_MIN_MS = 2 * 60_000;
export const LATE_MAX_MS = 10 * 60_000;
/** Below the example topologies' maxOutOfOrderness (5 s): a swap must not make an event late. */
export const SWAP_WITHIN_MS = 5_000;
const CHANNELS = ['web', 'app', 'store'];

interface Held {
  event: OrderEvent;
  /** Released once the latest timestamp written reaches this. */
  dueAt: number;
}

/**
 * The events with the given shares of disorder, never one dropped: held ones are flushed at the end. Each event
 * gets at most one of duplicate, late and out of order (their shares may add up to 1 at most), and any of them may
 * also be v2. `counts`, when given, is filled in as the events are written.
 */
export function* withDisorder(
  events: Iterable<OrderEvent>,
  shares: DisorderShares,
  seed = 1,
  counts?: DisorderCounts,
): Generator<OrderEvent> {
  const duplicate = shareOf('duplicate', shares.duplicate);
  const late = duplicate + shareOf('late', shares.late);
  const outOfOrder = late + shareOf('outOfOrder', shares.outOfOrder);
  const v2 = shareOf('v2', shares.v2);
  if (outOfOrder > 1) throw new RangeError('withDisorder: duplicate, late and outOfOrder add up to more than 1');
  const tally = Object.assign(counts ?? ({} as DisorderCounts), { duplicate: 0, late: 0, outOfOrder: 0, v2: 0 });
  const rnd = seededRandom(seed);
  let ready: OrderEvent[] = [];
  let written = 0;
  let latest = Number.NEGATIVE_INFINITY;
  // Held late events, sorted by due time: releasing takes from the front.
  const held: Held[] = [];
  const repeats: Array<{ event: OrderEvent; at: number }> = [];
  let swapped: OrderEvent | undefined;

  const write = (e: OrderEvent) => {
    ready.push(e);
    written++;
    if (e.timestamp > latest) latest = e.timestamp;
  };
  /** The held events due by `until` that `which` picks (all by default), oldest first. */
  const release = (until: number, which: (h: Held) => boolean = () => true) => {
    let end = 0;
    while (end < held.length && held[end]!.dueAt <= until) end++;
    const due = held.slice(0, end);
    const out = due.filter(which);
    if (out.length === 0) return;
    held.splice(0, end, ...due.filter((h) => !which(h)));
    for (const h of out.sort((a, b) => a.event.timestamp - b.event.timestamp)) {
      const behind = latest - h.event.timestamp;
      if (behind >= LATE_MIN_MS && behind <= LATE_MAX_MS) tally.late++;
      write(h.event);
    }
  };
  /** An event in its place: after the one waiting to be swapped, if it is close enough in event time. */
  const place = (e: OrderEvent) => {
    // A gap in event time would put held events more than LATE_MAX_MS behind: they go first, less late. Only
    // events due before this one can be that far behind (their delay is below LATE_MAX_MS).
    release(e.timestamp, (h) => e.timestamp - h.event.timestamp > LATE_MAX_MS);
    const waiting = swapped;
    swapped = undefined;
    if (waiting && Math.abs(e.timestamp - waiting.timestamp) < SWAP_WITHIN_MS) {
      write(e);
      write(waiting);
      tally.outOfOrder++;
    } else {
      if (waiting) write(waiting);
      write(e);
    }
  };

  for (const input of events) {
    // Four draws per event whatever happens to it, so that one share does not shift the others' choices.
    const kind = rnd();
    const version = rnd();
    const channel = rnd();
    const param = rnd();
    let e = input;
    if (e.eventType === 'OrderPlaced' && version < v2) {
      e = { ...e, data: { ...e.data, channel: CHANNELS[Math.floor(channel * CHANNELS.length)]! } };
      tally.v2++;
    }
    if (kind < duplicate) {
      place(e);
      insertBy(repeats, { event: e, at: written + 1 + Math.floor(param * DUPLICATE_WITHIN) }, (r) => r.at);
      tally.duplicate++;
    } else if (kind < late) {
      const dueAt = e.timestamp + LATE_MIN_MS + Math.floor(param * (LATE_MAX_MS - LATE_MIN_MS));
      insertBy(held, { event: e, dueAt }, (h) => h.dueAt);
    } else if (kind < outOfOrder && swapped === undefined) {
      swapped = e;
    } else {
      place(e);
    }
    release(latest);
    while (repeats.length > 0 && repeats[0]!.at <= written) write(repeats.shift()!.event);
    yield* ready;
    ready = [];
  }
  if (swapped) write(swapped);
  release(Number.POSITIVE_INFINITY);
  for (const r of repeats) write(r.event);
  yield* ready;
}

function shareOf(name: keyof DisorderShares, share: number | undefined): number {
  if (share === undefined) return 0;
  if (!(share >= 0 && share <= 1))
    throw new RangeError(`withDisorder: ${name} must be a share from 0 to 1, not ${share}`);
  return share;
}

/** Inserts `item` into `list`, sorted by `by`, after the equal ones (binary search). */
function insertBy<T>(list: T[], item: T, by: (t: T) => number): void {
  const v = by(item);
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (by(list[mid]!) <= v) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, item);
}
