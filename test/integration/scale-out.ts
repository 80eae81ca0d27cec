// Many workers, one answer: order-analytics and order-status run as several real workers of one process (each its
// own consumer-group member with its own Kafka clients) over ONE embedded ClickHouse engine, lent to all of them,
// so that they write it as the clients of one server do. While `pipelines loadgen` writes a seeded stream, members
// are added, removed, killed and stalled at seeded moments; at the end every read model is compared with the
// generator's oracle. Used by scale-out.test.ts (CI) and on demand by test/faults/scale-out.ts (longer).
//
// In one process a SIGKILL cannot hit one worker. A kill here cuts the worker's ClickHouse: every call from then on
// fails for good, so the worker stops where it is, without a flush or a commit (its last range half written, its
// records not committed); a call already in flight still lands. A stall holds a worker's ClickHouse calls, then a
// replacement joins with its PIPELINES_GROUP_INSTANCE_ID (order-analytics runs static members): Kafka fences the old
// instance and hands its partitions over at once, while the old one still has a flush to make, the zombie the
// claims fence (offsets.ts).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repartitionTopic, stageGroup } from '../../pipelines/compile/stages.ts';
import { caughtUp, committedOffsets, drainedTo, endOffsets } from '../../pipelines/kafka/offsets.ts';
import type { ExpectedReadModels } from '../../pipelines/loadgen/expected.ts';
import { seededRandom } from '../../pipelines/loadgen/orders.ts';
import { produce, snapshotEncoder } from '../../pipelines/loadgen/produce.ts';
import { launchWorker, type RunningWorker } from '../../pipelines/runtime/launch.ts';
import { type ClickHouse, openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import { ClickHouseSinkError } from '../../pipelines/sinks/clickhouse/errors.ts';
import { lendClickHouse } from '../../pipelines/sinks/clickhouse/spec.ts';
import { ANALYTICS_MODELS, compareCounts, compareRows, type Tally } from '../faults/compare.ts';
import { createTopics, produceOrders, stack, type TestTopics, testTopics } from './harness.ts';
import { QUERIES, rowsAsExpected } from './read-models.ts';

const PARTITIONS = 6;
const ALL = ['order-analytics', 'order-status', 'order-totals'] as const;
type Topology = (typeof ALL)[number];
/** The repartition steps of order-totals: each a stage, its own group, reading its own topic. */
const STAGES: Partial<Record<Topology, string[]>> = { 'order-totals': ['by-segment', 'by-customer'] };
/** A static member that stops is replaced after this long. */
const SESSION_MS = 6000;
const STALL_MS = 12_000;

export interface ScaleOptions {
  orders: number;
  seed: number;
  /** Events per second loadgen writes. */
  rate: number;
  /** Membership changes in all (add, remove, kill, stall), at seeded moments over the stream. */
  changes: number;
  maxMembers: number;
  /** The topologies run, each by its own members (default order-analytics and order-status). */
  topologies?: Topology[];
  log?: (line: string) => void;
}

export interface ScaleResult {
  events: number;
  models: Record<string, Tally>;
  /** Each kind of change made, per topology. */
  changes: Record<string, number>;
  /** Workers that stopped on CH_FENCED: a stalled one that lost its partitions, refused before it inserted. */
  fenced: number;
  /** Milliseconds from a partition's revoke to the first batch of it at its next owner (graceful moves). */
  moves: number[];
  /** Per read model of emit: onClose windows, the windows at the end of the stream not closed yet (not compared). */
  open: Record<string, number>;
}

/** The customer of the orders that close the windows (closingOrders): not one of the oracle's. */
const CLOSING = 'closing';

/**
 * The windows after a repartition close as their stage's event time moves, and it moves with records only: a stream
 * that ended in a rebalance, or while a partition without keys still held the watermark back (idleTimeout after an
 * assignment), leaves them open. Once the stream is taken, orders a year later move it past every window of the
 * stream; theirs stay open. One per segment (closing customers of each, added to the customers table first), so
 * that every partition of the repartition topic gets one, whichever worker owns it; twice, 3 s apart, so that a
 * partition without keys counts as idle by the second.
 */
export async function closingOrders(topics: TestTopics): Promise<void> {
  const { conn, codec } = stack();
  const customers = ['consumer', 'smb', 'enterprise'].map((segment) => ({
    customerId: `${CLOSING}-${segment}`,
    name: CLOSING,
    segment,
    country: 'DE',
  }));
  const encode = await snapshotEncoder(codec, topics.CUSTOMERS_TOPIC, 'Customer');
  await produce(
    conn.kafka,
    topics.CUSTOMERS_TOPIC,
    customers.map((c) => ({ key: c.customerId, value: encode(c) })),
  );
  await sleep(2000); // the workers follow the table's topic
  const at = Date.UTC(2027, 0, 1);
  for (const i of [0, 1]) {
    // The segment-less closer too: a customer missing from the table ('unknown').
    const events = [CLOSING, ...customers.map((c) => c.customerId)].map((customerId) => {
      const orderId = `${customerId}-${i}`;
      const data = { orderId, customerId, items: [], totalAmount: 1 };
      return { eventId: orderId, eventType: 'OrderPlaced' as const, timestamp: at + i * 1000, data };
    });
    await produceOrders(topics, events);
    await sleep(3000);
  }
}

/** order-totals' read models, in the shapes of the oracle's revenue_by_segment_1m and customer_ltv. */
const TOTALS_QUERIES = {
  segment_revenue_final_1m: `SELECT window_start, segment, revenue, orders FROM segment_revenue_final_1m FINAL
ORDER BY window_start, segment`,
  customer_totals: `SELECT customer_id, orders, revenue, first_order_at, last_order_at FROM customer_totals FINAL
WHERE NOT startsWith(customer_id, '${CLOSING}') ORDER BY customer_id`,
};

/**
 * order-totals' read models against the oracle, into `models`; returns the windows not closed yet at the end of the
 * stream (final rows exist for the windows the watermark passed: up to a minute or so before the end).
 */
export async function orderTotalsModels(
  engine: ClickHouse,
  expected: ExpectedReadModels,
  models: Record<string, Tally>,
): Promise<Record<string, number>> {
  const totals = await rowsAsExpected(engine, TOTALS_QUERIES.customer_totals);
  models.customer_totals = compareRows('customer_ltv', expected.customer_ltv, totals);
  const minutes = await rowsAsExpected(engine, TOTALS_QUERIES.segment_revenue_final_1m);
  const last = String(minutes.at(-1)?.window_start ?? '');
  const closed = expected.revenue_by_segment_1m.filter((r) => String(r.window_start) <= last);
  models.segment_revenue_final_1m = compareRows('revenue_by_segment_1m', closed, minutes);
  return { segment_revenue_final_1m: expected.revenue_by_segment_1m.length - closed.length };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One worker's view of the shared engine: its calls can be held (a stall) or refused for good (a kill). */
class Gate {
  #cut = false;
  #held: Promise<void> | undefined;

  readonly ch: ClickHouse;

  constructor(ch: ClickHouse) {
    this.ch = ch;
  }

  cut(): void {
    this.#cut = true;
  }

  hold(ms: number): void {
    this.#held = sleep(ms).then(() => {
      this.#held = undefined;
    });
  }

  view(): ClickHouse {
    const client = new Proxy(this.ch.client, {
      get: (target, prop, receiver) => {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function' || prop === 'close') return value;
        return async (...args: unknown[]) => {
          while (this.#held) await this.#held;
          if (this.#cut)
            throw new ClickHouseSinkError({ code: 'CH_SERVER', retriable: false, message: 'this worker was killed' });
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    return { ...this.ch, client, close: async () => {} };
  }
}

interface Member {
  name: string;
  topology: Topology;
  gate: Gate;
  running: RunningWorker;
  /** Settles when the worker ends, with its error if it failed. */
  ended: Promise<Error | undefined>;
  instanceId: string | undefined;
}

export function loadgen(o: Pick<ScaleOptions, 'orders' | 'seed' | 'rate'>, topics: TestTopics, file: string) {
  const args = ['--orders', `${o.orders}`, '--seed', `${o.seed}`, '--skew', '1', '--rate', `${o.rate}`, '--v2', '0.2'];
  const child = spawn(process.execPath, ['pipelines/cli/main.ts', 'loadgen', ...args, '--expected', file], {
    env: { ...process.env, ...topics },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const done = new Promise<void>((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`loadgen exited ${code}: ${err}`)))),
  );
  done.catch(() => {});
  return { done, stop: () => child.kill('SIGKILL') };
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 600_000): Promise<void> {
  const started = Date.now();
  while (!(await check().catch(() => false))) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

export async function scaleOut(o: ScaleOptions): Promise<ScaleResult> {
  const log = o.log ?? (() => {});
  const rnd = seededRandom(o.seed);
  const topics = testTopics('scale-out');
  await createTopics(topics, PARTITIONS);
  const dir = mkdtempSync(join(tmpdir(), 'scale-out-'));
  const file = join(dir, 'expected.json');
  const engine = openClickHouse({ kind: 'embedded', path: join(dir, 'ch') });
  const kafka = stack().conn.kafka;
  const TOPOLOGIES = o.topologies ?? ['order-analytics', 'order-status'];
  const groups = Object.fromEntries(TOPOLOGIES.map((t) => [t, `scale-${t}-${Date.now()}`])) as Record<Topology, string>;
  const members: Member[] = [];
  /** Killed members, stopping on their own. */
  const dying: Member[] = [];
  const changes: Record<string, number> = {};
  const moves: number[] = [];
  const revokedAt = new Map<string, number>();
  let fenced = 0;
  let named = 0;
  let done = false;
  const count = (what: string) => {
    changes[what] = (changes[what] ?? 0) + 1;
  };

  /** `instance`: a static member (group.instance.id) of that name, taking over from one still running. */
  const start = async (topology: Topology, instance?: string): Promise<Member> => {
    const name = `${topology}#${++named}`;
    // order-analytics runs static members (as a StatefulSet would), order-status dynamic ones.
    const instanceId = instance ?? (topology === 'order-analytics' ? name.replace('#', '-') : undefined);
    const gate = new Gate(engine);
    const key = (p: number) => `${topology}/${p}`;
    const running = await launchWorker({
      file: `topologies/${topology}.yaml`,
      env: { ...process.env, ...topics, ...(instanceId ? { PIPELINES_GROUP_INSTANCE_ID: instanceId } : {}) },
      flags: { group: groups[topology] },
      log: {
        info(fields, msg) {
          const ps = (fields as { partitions?: number[] }).partitions ?? [];
          if (msg === 'partitions revoked' || msg === 'partitions assigned') log(`    ${name}: ${msg} ${ps.join(',')}`);
          if (msg === 'partitions revoked') for (const p of ps) revokedAt.set(key(p), performance.now());
        },
        warn() {},
        error(fields, msg) {
          if (msg !== 'worker failed: stopping') log(`  ${name}: ${msg} ${JSON.stringify(fields)}`);
        },
      },
      observe: false,
      lent: new Map([lendClickHouse(gate.view())]),
      tuning: {
        consumer: { 'session.timeout.ms': SESSION_MS },
        clickhouseMaxRows: 5000,
      },
      onBatch: (e) => {
        if (done) return revokedAt.clear(); // a move after the stream has no new record to time it by
        const at = revokedAt.get(key(e.partition));
        if (at === undefined) return;
        revokedAt.delete(key(e.partition));
        moves.push(performance.now() - at);
      },
    });
    const ended = running.finished.then(
      () => undefined,
      (err: Error) => err,
    );
    const m: Member = { name, topology, gate, running, ended, instanceId };
    members.push(m);
    void ended.then((err) => {
      if (!err) return;
      if (/taken over by another worker/.test(err.message)) fenced++;
      log(`  ${name} ended: ${err.message.slice(0, 160)}`);
    });
    return m;
  };
  const live = (t: Topology) => members.filter((m) => m.topology === t);
  const hasEnded = (m: Member) => Promise.race([m.ended.then(() => true), sleep(0).then(() => false)]);
  const drop = async (m: Member) => {
    const at = members.indexOf(m);
    if (at >= 0) members.splice(at, 1);
    await m.running.stop().catch(() => {});
  };

  let gen: ReturnType<typeof loadgen> | undefined;
  try {
    gen = loadgen(o, topics, file);
    const written = gen.done;
    // The lookup tables are read to their end at start: start the workers once the snapshots are written.
    const total = (m: Map<number, bigint>) => [...m.values()].reduce((n, x) => n + Number(x), 0);
    await waitFor('the snapshots', async () => total(await endOffsets(kafka, topics.PRODUCTS_TOPIC)) >= 50);
    for (const t of TOPOLOGIES) await start(t);
    const seconds = (o.orders * 2.85) / o.rate;
    void written.then(() => {
      done = true;
    });
    // Each kind of change in fair shares, in a seeded order; adapted to the members there are when its turn comes.
    const kinds = ['add', 'kill', 'remove', 'add', 'stall', 'kill', 'add', 'remove'] as const;
    const plan = Array.from({ length: o.changes }, (_, i) => kinds[i % kinds.length]!);
    for (let i = plan.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [plan[i], plan[j]] = [plan[j]!, plan[i]!];
    }
    // One stall lands early, on order-analytics, while the stream is still coming: the zombie case.
    const early = plan.indexOf('stall');
    if (early >= 0 && o.changes > 4) [plan[early], plan[4]] = [plan[4]!, 'stall'];
    for (let i = 0; i < o.changes; i++) {
      await sleep(((0.6 * seconds) / o.changes) * (0.5 + rnd()) * 1000);
      // Workers that ended (killed, fenced) are gone: the next change may start their replacement.
      for (const m of [...members]) if (await hasEnded(m)) await drop(m);
      const t = TOPOLOGIES[i % TOPOLOGIES.length]!;
      const n = live(t).length;
      const pick = () => live(t)[Math.floor(rnd() * live(t).length)]!;
      let kind = plan[i]!;
      if (kind === 'stall' && t !== 'order-analytics') kind = 'kill';
      if (n === 0 || (kind === 'remove' && n === 1)) kind = 'add';
      else if (kind === 'add' && n >= o.maxMembers) kind = 'remove';
      let target = '';
      if (kind === 'add') target = (await start(t)).name;
      else {
        const m = pick();
        target = m.name;
        if (kind === 'remove') await drop(m);
        else if (kind === 'kill') {
          // Gone at once, as a killed process is: it stops on its next ClickHouse call.
          members.splice(members.indexOf(m), 1);
          dying.push(m);
          m.gate.cut();
        } else {
          // A replacement with the stalled member's instance id takes its partitions at once (Kafka fences the old
          // instance), while the old one still has a flush to make: the zombie the claims must fence.
          m.gate.hold(STALL_MS);
          await sleep(500);
          target += `, replaced by ${(await start(t, m.instanceId)).name}`;
          members.splice(members.indexOf(m), 1);
          dying.push(m);
          await sleep(STALL_MS); // nothing else happens to this group until the stall is over
        }
      }
      count(`${t} ${kind}`);
      log(
        `  ${i + 1}/${o.changes}: ${t} ${kind} ${target} (${live(t).length} members)${done ? ' after the stream' : ''}`,
      );
    }
    await written;
    // Whatever ended is replaced by one member; then each group must commit to the end.
    for (const m of [...members]) if (await hasEnded(m)) await drop(m);
    for (const t of TOPOLOGIES) if (live(t).length === 0) await start(t);
    const ends = await endOffsets(kafka, topics.ORDERS_TOPIC);
    const settle = async (t: Topology, ends: Map<number, bigint>) => {
      const restart = async () => {
        for (const m of live(t)) {
          if (!(await hasEnded(m))) continue;
          await drop(m);
          await start(t);
        }
      };
      await waitFor(`${t} to commit the stream`, async () => {
        await restart();
        return caughtUp(await committedOffsets(kafka, groups[t], topics.ORDERS_TOPIC), ends);
      });
      // Then each stage its repartition topic, as it is once the stage before it is done (written in
      // transactions: the end is a marker beyond the last record, which no commit covers).
      for (const step of STAGES[t] ?? []) {
        const topic = repartitionTopic(groups[t], step);
        const internal = await endOffsets(kafka, topic);
        await waitFor(`${t} stage ${step} to commit its topic`, async () => {
          await restart();
          return drainedTo(kafka, topic, await committedOffsets(kafka, stageGroup(groups[t], step), topic), internal);
        });
      }
    };
    for (const t of TOPOLOGIES) await settle(t, ends);
    if (TOPOLOGIES.includes('order-totals')) {
      await closingOrders(topics);
      await settle('order-totals', await endOffsets(kafka, topics.ORDERS_TOPIC));
    }
    for (const m of [...members]) await drop(m);

    const expected = JSON.parse(readFileSync(file, 'utf8')) as { events: number; readModels: ExpectedReadModels };
    const models: Record<string, Tally> = {};
    const open: Record<string, number> = {};
    if (TOPOLOGIES.includes('order-totals'))
      Object.assign(open, await orderTotalsModels(engine, expected.readModels, models));
    if (TOPOLOGIES.includes('order-analytics'))
      for (const model of ANALYTICS_MODELS)
        models[model] = compareRows(model, expected.readModels[model], await rowsAsExpected(engine, QUERIES[model]));
    if (TOPOLOGIES.includes('order-status')) {
      const status = await rowsAsExpected(
        engine,
        'SELECT status, count() AS n FROM order_summary FINAL GROUP BY status ORDER BY status',
      );
      models.order_summary = compareCounts(
        new Map(Object.entries(expected.readModels.order_status)),
        new Map(status.map((r) => [String(r.status), Number(r.n)])),
      );
      const funnel = (await rowsAsExpected(engine, QUERIES.order_funnel)).map(
        ({ hour, placed, paid, shipped, cancelled }) => ({ hour, placed, paid, shipped, cancelled }),
      );
      const placed = (rows: Array<{ hour: unknown; placed: unknown }>) =>
        new Map(rows.map((r) => [String(r.hour), Number(r.placed)]));
      models.order_funnel = {
        ...compareCounts(placed(expected.readModels.order_funnel), placed(funnel)),
        exact: JSON.stringify(funnel) === JSON.stringify(expected.readModels.order_funnel),
      };
    }
    return { events: expected.events, models, changes, fenced, moves, open };
  } finally {
    gen?.stop();
    for (const m of [...members, ...dying.splice(0)]) await drop(m);
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
