// The fault run: each fault in a phase of its own, on topics of its own, while `pipelines loadgen` writes a seeded
// order stream (with v2 records and poison among it) at a steady rate. Two topologies consume it under supervision
// (a worker that exits is started again, as Kubernetes would): order-analytics into embedded ClickHouse (exactly
// once through the offsets log) and order-enrichment to Kafka (exactly once through transactions). At seeded
// moments the fault is injected; once the stream is written and both groups are committed to its end, every read
// model is compared with the generator's expected file and the enriched topic with the order lines the stream
// holds. Recovery: from the fault cleared to both groups committed up to what was written a second after it.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { caughtUp, committedOffsets, endOffsets } from '../../pipelines/kafka/offsets.ts';
import type { ExpectedReadModels } from '../../pipelines/loadgen/expected.ts';
import { type OrderPlaced, seededRandom } from '../../pipelines/loadgen/orders.ts';
import { loadStream } from '../../pipelines/loadgen/stream.ts';
import {
  countBy,
  createTopics,
  readTopic,
  spawnWorker,
  stack,
  type TestTopics,
  testTopics,
  type WorkerProcess,
  waitForLog,
} from '../integration/harness.ts';
import { ANALYTICS_MODELS, compareCounts, compareRows, type Tally } from './compare.ts';
import { clientQuota, pause, service } from './inject.ts';

export const FAULTS = [
  'none',
  'kill-9',
  'broker-restart',
  'broker-down',
  'registry-down',
  'join-leave',
  'poison-burst',
  'slow-sink',
] as const;
export type Fault = (typeof FAULTS)[number];

export interface RunOptions {
  /** Orders per phase (about 2.85 events each). */
  orders: number;
  seed: number;
  /** Events per second loadgen writes. */
  rate: number;
  /** How long broker, registry and slow-sink faults last. */
  outageSeconds: number;
  /** kill -9 per kill phase, alternating between the two topologies. */
  kills: number;
  faults: readonly Fault[];
  /** The two supervised workers are static members (PIPELINES_GROUP_INSTANCE_ID): a restart rejoins as itself. */
  staticMembers?: boolean;
  log?: (line: string) => void;
}

export interface PhaseResult {
  fault: Fault;
  injected: number;
  events: number;
  models: Record<string, Tally>;
  lost: number;
  duplicated: number;
  deadLettered: { expected: number; analytics: number; enrichment: number };
  /** Seconds from the fault cleared to both groups committed up to what was written a second after it. */
  recoverySeconds: number;
  exits: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A worker started again whenever it exits, until stopped. */
class Supervised {
  current: WorkerProcess;
  exits = 0;
  private stopping = false;
  private restarts = 0;

  private readonly topology: string;
  private readonly env: Record<string, string>;
  private readonly args: string[];
  private readonly name: string;

  constructor(topology: string, env: Record<string, string>, args: string[], name: string) {
    this.topology = topology;
    this.env = env;
    this.args = args;
    this.name = name;
    this.current = this.start();
  }

  private alive = false;

  private start(): WorkerProcess {
    const w = spawnWorker(this.topology, this.env, this.args, `${this.name}-${this.restarts++}`);
    this.alive = true;
    w.exited.then(async () => {
      this.alive = false;
      if (this.stopping) return;
      this.exits++;
      await sleep(1000);
      if (!this.stopping) this.current = this.start();
    });
    return w;
  }

  /** Resolves once the worker running now (after a restart if one is due) has its partitions. */
  assigned(): Promise<number> {
    return waitFor(
      `${this.name} to have its partitions`,
      async () => this.alive && readFileSync(this.current.log, 'utf8').includes('partitions assigned'),
    );
  }

  kill9(): void {
    this.current.child.kill('SIGKILL');
  }

  async stop(): Promise<number | null> {
    await this.assigned();
    this.stopping = true;
    this.current.child.kill('SIGTERM');
    return this.current.exited;
  }
}

function loadgen(o: RunOptions, topics: TestTopics, file: string, poison: number) {
  const args = ['--orders', `${o.orders}`, '--seed', `${o.seed}`, '--skew', '1', '--rate', `${o.rate}`];
  const child = spawn(
    process.execPath,
    ['pipelines/cli/main.ts', 'loadgen', ...args, '--v2', '0.2', '--poison', `${poison}`, '--expected', file],
    { env: { ...process.env, ...topics }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d;
  });
  return new Promise<void>((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`loadgen exited ${code}: ${err}`)))),
  );
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 600_000): Promise<number> {
  const started = Date.now();
  while (!(await check().catch(() => false))) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
  return Date.now() - started;
}

const total = (offsets: Map<number, bigint>) => [...offsets.values()].reduce((n, o) => n + Number(o), 0);

async function phase(o: RunOptions, fault: Fault, index: number): Promise<PhaseResult> {
  const log = o.log ?? (() => {});
  const rnd = seededRandom(o.seed * 100 + index);
  const topics = testTopics(`faults-${fault}`);
  await createTopics(topics);
  const dir = mkdtempSync(join(tmpdir(), `faults-${fault}-`));
  const file = join(dir, 'expected.json');
  const poison = fault === 'poison-burst' ? 500 : 10;
  const { conn } = stack();
  const kafka = conn.kafka;
  try {
    const written = loadgen({ ...o, seed: o.seed + index }, topics, file, poison);
    // The lookup tables are read to their end at start: start the workers once the snapshots are written.
    await waitFor('the snapshots', async () => total(await endOffsets(kafka, topics.PRODUCTS_TOPIC)) >= 50);
    const groups = { analytics: `faults-analytics-${Date.now()}`, enrichment: `faults-enrichment-${Date.now()}` };
    const clientId = `faults-enrichment-${Date.now()}`;
    const instance = (name: string): Record<string, string> =>
      o.staticMembers ? { PIPELINES_GROUP_INSTANCE_ID: `${name}-${Date.now()}` } : {};
    const analytics = new Supervised(
      'topologies/order-analytics.yaml',
      { ...topics, PIPELINES_CLICKHOUSE_PATH: join(dir, 'ch'), ...instance('analytics') },
      ['--group', groups.analytics],
      `faults-${fault}-analytics`,
    );
    const enrichment = new Supervised(
      'topologies/order-enrichment.yaml',
      { ...topics, PIPELINES_CLIENT_ID: clientId, ...instance('enrichment') },
      ['--group', groups.enrichment],
      `faults-${fault}-enrichment`,
    );
    const seconds = (o.orders * 2.85) / o.rate;
    const moment = () => sleep((0.15 + 0.35 * rnd()) * seconds * 1000);
    let injected = 0;
    await Promise.all([analytics.assigned(), enrichment.assigned()]);
    await moment();
    switch (fault) {
      case 'none':
        break;
      case 'kill-9':
        for (let k = 0; k < o.kills; k++) {
          const victim = k % 2 === 0 ? analytics : enrichment;
          await victim.assigned();
          await sleep(1000 + rnd() * 4000);
          victim.kill9();
          injected++;
          log(`  kill -9 of ${victim === analytics ? 'order-analytics' : 'order-enrichment'}`);
        }
        break;
      case 'broker-restart':
        await service('down', 'kafka');
        await service('up', 'kafka');
        injected++;
        break;
      case 'broker-down':
        await service('down', 'kafka');
        await sleep(o.outageSeconds * 1000);
        await service('up', 'kafka');
        injected++;
        break;
      case 'registry-down':
        // Stopped, not restarted: the local registry keeps its schemas in memory (a real one persists them).
        await pause('registry', o.outageSeconds * 1000);
        injected++;
        break;
      case 'join-leave': {
        // Embedded ClickHouse is for one worker (a second member is refused): the Kafka topology scales.
        const second = spawnWorker(
          'topologies/order-enrichment.yaml',
          { ...topics, PIPELINES_CLIENT_ID: clientId },
          ['--group', groups.enrichment],
          `faults-${fault}-enrichment-joiner`,
        );
        await waitForLog(second, 'partitions assigned');
        await sleep(3000 + rnd() * 3000);
        second.child.kill('SIGTERM');
        if ((await second.exited) !== 0) throw new Error(`the joining worker exited badly: ${second.log}`);
        injected++;
        break;
      }
      case 'poison-burst':
        injected++; // the 500 records are spread over this phase's stream by loadgen
        break;
      case 'slow-sink':
        clientQuota(clientId, 20_000);
        await sleep(o.outageSeconds * 1000);
        clientQuota(clientId, undefined);
        injected++;
        break;
    }
    const cleared = Date.now();
    // What is written in the second after the fault: a worker killed after its last commit must start and take it.
    await sleep(1000);
    const atClear = await endOffsets(kafka, topics.ORDERS_TOPIC);
    const bothCommitted = (ends: Map<number, bigint>) => async () =>
      caughtUp(await committedOffsets(kafka, groups.analytics, topics.ORDERS_TOPIC), ends) &&
      caughtUp(await committedOffsets(kafka, groups.enrichment, topics.ORDERS_TOPIC), ends);
    await Promise.all([analytics.assigned(), enrichment.assigned()]);
    await waitFor('recovery', bothCommitted(atClear));
    const recoverySeconds = (Date.now() - cleared) / 1000;
    await written;
    const ends = await endOffsets(kafka, topics.ORDERS_TOPIC);
    await waitFor('the end of the stream', bothCommitted(ends));
    const exits = analytics.exits + enrichment.exits;
    for (const [name, w] of [
      ['order-analytics', analytics],
      ['order-enrichment', enrichment],
    ] as const) {
      const rc = await w.stop();
      if (rc !== 0) throw new Error(`${name} exited ${rc} on SIGTERM: ${w.current.log}`);
    }
    const expected = JSON.parse(readFileSync(file, 'utf8')) as { events: number; readModels: ExpectedReadModels };
    const actual = await readModels(join(dir, 'ch'));
    const models: Record<string, Tally> = {};
    for (const model of ANALYTICS_MODELS)
      models[model] = compareRows(model, expected.readModels[model], actual[model] ?? []);
    models['orders.enriched'] = await enrichedLines(o, index, topics);
    const dead = await readTopic(topics.DLQ_TOPIC, { decode: 'raw', idleMs: 3000 });
    const byTopology = countBy(dead, (d) => d.headers['pipelines.dlq.topology'] ?? '?');
    const tallies = Object.values(models);
    return {
      fault,
      injected,
      events: expected.events,
      models,
      lost: tallies.reduce((n, t) => n + t.lost, 0),
      duplicated: tallies.reduce((n, t) => n + t.duplicated, 0),
      deadLettered: {
        expected: poison,
        analytics: byTopology.get('order-analytics') ?? 0,
        enrichment: byTopology.get('order-enrichment') ?? 0,
      },
      recoverySeconds,
      exits,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function readModels(dir: string): Promise<Record<string, Record<string, unknown>[]>> {
  const out = spawn(process.execPath, ['test/faults/read-clickhouse.ts', dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  out.stdout!.on('data', (d) => {
    text += d;
  });
  return new Promise((resolve, reject) =>
    out.on('exit', (code) => (code === 0 ? resolve(JSON.parse(text)) : reject(new Error(`reader exited ${code}`)))),
  );
}

/** The enriched topic, as `orderId/line`, against every line of every order placed in the phase's stream. */
async function enrichedLines(o: RunOptions, index: number, topics: TestTopics): Promise<Tally> {
  const events = loadStream({ orders: o.orders, seed: o.seed + index, skew: 1, shares: { v2: 0.2 } });
  const expected = new Map<string, number>();
  for (const e of events) {
    if (e.eventType !== 'OrderPlaced') continue;
    const placed = e as OrderPlaced;
    for (let line = 0; line < placed.data.items.length; line++) expected.set(`${placed.data.orderId}/${line}`, 1);
  }
  const out = await readTopic(topics.ENRICHED_TOPIC, { expect: expected.size, idleMs: 15_000 });
  const actual = countBy(out, (r) => {
    const v = r.value as { orderId: string; line: number };
    return `${v.orderId}/${v.line}`;
  });
  return compareCounts(expected, actual);
}

export async function runFaults(o: RunOptions): Promise<PhaseResult[]> {
  const results: PhaseResult[] = [];
  for (const [i, fault] of o.faults.entries()) {
    o.log?.(`phase ${i + 1}/${o.faults.length}: ${fault}`);
    const r = await phase(o, fault, i);
    o.log?.(`  ${faultRow(r)}`);
    results.push(r);
  }
  return results;
}

export const TABLE_HEAD =
  '| fault | injected | events | lost | duplicated | dead-lettered (expected: analytics / enrichment) | recovery | worker exits | read models exact |\n' +
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- |';

export function faultRow(r: PhaseResult): string {
  const exact = Object.entries(r.models).filter(([, t]) => t.exact).length;
  const d = r.deadLettered;
  return `| ${r.fault} | ${r.injected} | ${r.events} | ${r.lost} | ${r.duplicated} | ${d.expected}: ${d.analytics} / ${d.enrichment} | ${r.recoverySeconds.toFixed(1)} s | ${r.exits} | ${exact} of ${Object.keys(r.models).length} |`;
}
