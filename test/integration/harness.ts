// Helpers for tests that run real workers: unique topics per test, seeded data on the broker, workers as
// child processes (so they can be killed -9), and reading a topic back.
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { basename, join } from 'node:path';
import { KafkaJS } from '@confluentinc/kafka-javascript';
import { AvroCodec, AvroDecoder, RegistryClient } from '../../pipelines/codec/index.ts';
import { type Connections, clientConfig, connectionsFrom } from '../../pipelines/kafka/connection.ts';
import { committedOffsets } from '../../pipelines/kafka/offsets.ts';
import {
  createOrderTopics,
  type OrderTopics,
  orderTopics,
  produceOrderEvents,
  produceOrderSnapshots,
} from '../../pipelines/loadgen/order-topics.ts';
import type { OrderEvent } from '../../pipelines/loadgen/orders.ts';

export type TestTopics = OrderTopics;

/** Topics of their own for a test run. */
export function testTopics(name: string): TestTopics {
  return orderTopics(`${name}.${Date.now()}.${Math.floor(Math.random() * 1e6)}`);
}

export function stack(): { conn: Connections; registry: RegistryClient; codec: AvroCodec } {
  const conn = connectionsFrom(process.env);
  const registry = new RegistryClient(conn.registry);
  return { conn, registry, codec: new AvroCodec({ registry }) };
}

/** A client of the client library's KafkaJS layer on the test stack's broker, logging at `level` and above. */
export function kafkaClient(level: KafkaJS.logLevel = KafkaJS.logLevel.ERROR): KafkaJS.Kafka {
  return new KafkaJS.Kafka({ ...clientConfig(stack().conn.kafka), kafkaJS: { logLevel: level } } as never);
}

export const createTopics = (topics: TestTopics, partitions = 3) =>
  createOrderTopics(stack().conn.kafka, topics, partitions);

export async function produceSnapshots(topics: TestTopics): Promise<void> {
  const { conn, codec } = stack();
  await produceOrderSnapshots(conn.kafka, codec, topics);
}

export async function produceOrders(
  topics: TestTopics,
  events: Iterable<OrderEvent>,
  extra: Array<{ key: string; value: Buffer }> = [],
): Promise<number> {
  const { conn, codec } = stack();
  return produceOrderEvents(conn.kafka, codec, topics, events, extra);
}

export interface WorkerProcess {
  child: ChildProcess;
  exited: Promise<number | null>;
  log: string;
}

const running = new Map<ChildProcess, string>();

/**
 * Kills workers a test left behind (after a failure), so that jest can exit. What each was doing goes to the test's
 * output: CI keeps only that, not the logs.
 */
export async function stopWorkers(): Promise<void> {
  for (const [child, log] of running) {
    const report = await diagnosticReport(child, log);
    child.kill('SIGKILL');
    console.log(
      `worker still running at the end of the test (${log}), its last log lines:\n${logTail(log)}\n${report}`,
    );
  }
  running.clear();
}

/** Node's diagnostic report, asked for by signal: whether the worker's event loop still answers, and where it is. */
async function diagnosticReport(child: ChildProcess, log: string): Promise<string> {
  const file = reportFile(log);
  child.kill('SIGUSR2');
  for (let waited = 0; waited < 3000 && !existsSync(file); waited += 100) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 200)); // written in one go, but not atomically
  if (!existsSync(file)) return '  no diagnostic report within 3 s: its event loop is blocked';
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as {
      javascriptStack?: { message?: string; stack?: string[] };
      libuv?: Array<{ type: string; is_active?: boolean }>;
    };
    const handles = new Map<string, number>();
    for (const h of r.libuv ?? []) if (h.is_active) handles.set(h.type, (handles.get(h.type) ?? 0) + 1);
    const stack = (r.javascriptStack?.stack ?? []).slice(0, 6).map((f) => `    ${f.trim()}`);
    return [
      `  its event loop answers (diagnostic report ${file}): ${r.javascriptStack?.message || 'idle'}`,
      ...stack,
      `  active handles: ${[...handles].map(([t, n]) => `${t} ${n}`).join(', ')}`,
    ].join('\n');
  } catch (err) {
    return `  diagnostic report ${file} unreadable: ${(err as Error).message}`;
  }
}

const reportFile = (log: string) => log.replace(/\.log$/, '.report.json');

/** The worker's last structured log lines (librdkafka's own lines left out), shortened. */
function logTail(file: string, lines = 25): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{"level"'))
    .slice(-lines)
    .map((l) => {
      const r = JSON.parse(l) as { time?: string; level?: number; msg?: string; err?: string };
      return `  ${r.time} ${r.level} ${r.msg}${r.err ? `: ${r.err.slice(0, 300)}` : ''}`;
    })
    .join('\n');
}

const SETPRIV = '/usr/bin/setpriv';

/** `pipelines run <file>` as a child process, with the test's topics in its environment. */
export function spawnWorker(
  file: string,
  env: Record<string, string>,
  args: string[] = [],
  logName = `worker-${Date.now()}`,
): WorkerProcess {
  const dir = join(process.env.PIPELINES_STATE ?? '.local', 'test-logs');
  mkdirSync(dir, { recursive: true });
  const log = join(dir, `${logName}-${Date.now()}.log`);
  const out = createWriteStream(log, { flags: 'w' });
  // A worker still running when its test ends is asked for node's report (SIGUSR2) before it is killed.
  const report = [
    '--report-on-signal',
    '--report-signal=SIGUSR2',
    `--report-directory=${dir}`,
    `--report-filename=${basename(reportFile(log))}`,
  ];
  const command = [process.execPath, ...report, 'pipelines/cli/main.ts', 'run', file, '--no-metrics', ...args];
  // Killed with the test process: when a native crash takes it down, afterEach never runs, and a worker left over
  // held the metrics ports the next test file needed (seen in CI).
  const [cmd, ...argv] = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'SIGKILL', ...command] : command;
  const child = spawn(cmd!, argv, {
    env: { ...process.env, PIPELINES_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(out, { end: false });
  child.stderr!.pipe(out, { end: false });
  running.set(child, log);
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code, signal) => {
      if (signal) out.write(`\n[harness] worker ended by ${signal}\n`);
      running.delete(child);
      resolve(code);
    }),
  );
  return { child, exited, log };
}

export interface ReadRecord {
  partition: number;
  offset: string;
  key: string | null;
  value: unknown;
  headers: Record<string, string>;
}

/** Reads a topic from the beginning until `expect` records have arrived or nothing came for `idleMs`. */
export async function readTopic(
  topic: string,
  o: { expect?: number; idleMs?: number; decode?: 'avro' | 'raw'; readCommitted?: boolean } = {},
): Promise<ReadRecord[]> {
  const { registry } = stack();
  const decoder = new AvroDecoder({ registry, unknownRecord: 'writer' });
  const kafka = kafkaClient();
  const consumer = kafka.consumer({
    'group.id': `read-${topic}-${Date.now()}`,
    'auto.offset.reset': 'earliest',
    'enable.auto.commit': false,
    ...(o.readCommitted === false ? {} : { 'isolation.level': 'read_committed' }),
  } as never);
  await consumer.connect();
  await consumer.subscribe({ topics: [topic] });
  const out: ReadRecord[] = [];
  await new Promise<void>((resolve, reject) => {
    let idle = setTimeout(resolve, o.idleMs ?? 8000);
    consumer
      .run({
        eachBatch: async ({ batch }) => {
          clearTimeout(idle);
          if (o.decode !== 'raw') await decoder.prepare(batch.messages.map((m) => m.value));
          for (const m of batch.messages) {
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(m.headers ?? {})) headers[k] = String(Array.isArray(v) ? v[0] : v);
            out.push({
              partition: batch.partition,
              offset: m.offset,
              key: m.key?.toString() ?? null,
              value: o.decode === 'raw' || !m.value ? m.value : decoder.decode(m.value),
              headers,
            });
          }
          if (o.expect !== undefined && out.length >= o.expect) resolve();
          else idle = setTimeout(resolve, o.idleMs ?? 8000);
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return out;
}

export function countBy<T>(items: readonly T[], key: (t: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of items) m.set(key(t), (m.get(key(t)) ?? 0) + 1);
  return m;
}

export async function waitForLog(w: WorkerProcess, text: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(w.log) && readFileSync(w.log, 'utf8').includes(text)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`worker log ${w.log} never said '${text}'`);
}

/** Records a worker has read so far, from its metrics endpoint (0 until it answers). */
export async function recordsIn(port: number): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`)
    .then((r) => r.text())
    .catch(() => '');
  let n = 0;
  for (const m of text.matchAll(/^pipelines_records_in_total\{[^}]*\} (\S+)$/gm)) n += Number(m[1]);
  return n;
}

/** A TCP port free on loopback now (for a worker's metrics endpoint). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Kills the worker with SIGKILL once it has read `target` records (its records-in counter moves per batch;
 * committed offsets move per flush, in jumps that can pass the end). The worker must run with `--metrics` on
 * `port`. `ready` may hold the kill back further (e.g. until the group committed something). Returns the count
 * read when the signal was sent.
 */
export async function killWhenRead(
  w: WorkerProcess,
  port: number,
  target: number,
  ready: () => Promise<boolean> = async () => true,
): Promise<number> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    const n = await recordsIn(port);
    if (n >= target && (await ready())) {
      w.child.kill('SIGKILL');
      return n;
    }
    if (w.child.exitCode !== null) throw new Error(`worker exited before the kill, see ${w.log}`);
    if (Date.now() > deadline) throw new Error(`no progress to ${target} records, see ${w.log}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** True once the group has committed an offset on the topic: its state changelog then holds entries too. */
export async function hasCommitted(group: string, topic: string): Promise<boolean> {
  const committed = await committedOffsets(stack().conn.kafka, group, topic).catch(() => new Map<number, bigint>());
  return [...committed.values()].some((o) => o > 0n);
}

/** The order events' schemas (OrderPlaced in its v2), as a fixture reads them from its own `schemas/`. */
export const ORDER_SCHEMAS = ['OrderPlaced-v2', 'PaymentCaptured', 'OrderShipped', 'OrderCancelled'];
/** A fixture source's `value:` reading those events from one topic (TopicRecordName subjects). */
export const ORDER_VALUE = `{ format: avro, subjects: TopicRecordName, schemas: [${ORDER_SCHEMAS.map((s) => `schemas/${s}.avsc`).join(', ')}] }`;

/**
 * Writes a topology text as `<name>.yaml` into a new folder under `<PIPELINES_STATE or .local>/test-fixtures/`,
 * beside copies of the schemas it names (a topology may only read files inside its own folder); returns its path.
 */
export function writeFixture(name: string, text: string, schemas: readonly string[]): string {
  const dir = join(process.env.PIPELINES_STATE ?? '.local', 'test-fixtures', `${name}-${Date.now()}`);
  mkdirSync(join(dir, 'schemas'), { recursive: true });
  for (const s of schemas) cpSync(join('topologies', 'schemas', `${s}.avsc`), join(dir, 'schemas', `${s}.avsc`));
  writeFileSync(join(dir, `${name}.yaml`), text);
  return join(dir, `${name}.yaml`);
}

/** Entries read back, per 'state restored from the changelog' line of a worker's log. */
export function restoredEntries(w: WorkerProcess): number[] {
  return readFileSync(w.log, 'utf8')
    .split('\n')
    .filter((l) => l.includes('state restored from the changelog'))
    .map((l) => Number(/"entries":(\d+)/.exec(l)?.[1] ?? -1));
}
