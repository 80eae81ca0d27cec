// The order fulfilment saga on one worker, on the real stack, beside a bare consumer of the same client on the same
// topic in the same run. The inbox is pre-produced with every saga's whole flow (OrderPlaced, then the three
// success replies, in order, keyed by the order): each record is one saga step (a transition that sends one
// message: a command, or the OrderConfirmed at the end), exactly once (messages, state changelog and offsets in
// one transaction per batch). Then, offline, the memory an in-flight saga costs (heap after GC, 100k instances).
//   node test/bench/saga.bench.ts [sagas=25000] [rounds=3]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { subjectName } from '../../pipelines/codec/subjects.ts';
import { applyTopics } from '../../pipelines/kafka/topics.ts';
import { orderPlacedStream } from '../../pipelines/loadgen/orders.ts';
import { orderEventEncoder, produce } from '../../pipelines/loadgen/produce.ts';
import { loadPlan } from '../../pipelines/runtime/load.ts';
import { stack } from '../integration/harness.ts';
import { bareConsumer, workerRun } from './baseline.ts';

const SAGA = 'topologies/order-fulfilment.yaml';
interface RunResult {
  records: number;
  ms: number;
  rate: number;
  cpuUsPerRecord: number;
  maxRssMb: number;
}

async function child(mode: 'bare' | 'worker', env: Record<string, string>, total: number) {
  if (mode === 'bare') return bareConsumer(env.FULFILMENT_TOPIC!, total);
  return workerRun(SAGA, 'bench-saga', env, total);
}

/** Heap per in-flight saga: 100k OrderPlaced through the plan (no replies), heap after GC before and after. */
async function memoryPerSaga(): Promise<{ bytes: number; instances: number }> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  const plan = await loadPlan(SAGA, { env: {} });
  const placed = [...orderPlacedStream(100_000, { seed: 3 })];
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < placed.length; i += 1000) {
    const records = placed.slice(i, i + 1000).map((value, j) => ({
      topic: 'inbox',
      partition: 0,
      offset: i + j,
      key: value.data.orderId,
      value,
      timestamp: value.timestamp,
    }));
    plan.process(records, Date.now());
  }
  gc();
  const after = process.memoryUsage().heapUsed;
  const instances = Object.keys(plan.snapshot().steps.fulfilment as object).length;
  return { bytes: (after - before) / instances, instances };
}

/** The inbox: each saga's flow in order, keyed by its order, with the reply schemas registered as the saga's. */
async function produceInbox(topic: string, sagas: number): Promise<number> {
  const { conn, codec } = stack();
  const placed = await orderEventEncoder(codec, topic);
  const reply = async (name: string) => {
    const schema = JSON.parse(readFileSync(join('topologies/schemas/saga', `${name}.avsc`), 'utf8'));
    const enc = await codec.encoder(
      subjectName('TopicRecordName', { topic, recordName: `${schema.namespace}.${name}` }),
      schema,
    );
    return (v: unknown) => enc.encode(v);
  };
  const reserved = await reply('InventoryReserved');
  const charged = await reply('PaymentCharged');
  const scheduled = await reply('ShipmentScheduled');
  const messages: Array<{ key: string; value: Buffer }> = [];
  for (const o of orderPlacedStream(sagas, { seed: 9 })) {
    const id = o.data.orderId;
    const t = o.timestamp;
    const ev = (type: string, step: string, extra: Record<string, string>) => ({
      eventId: `${id}:${step}:reply`,
      eventType: type,
      timestamp: t,
      data: { orderId: id, commandId: `${id}:${step}:1`, ...extra },
    });
    messages.push({ key: id, value: placed(o) });
    messages.push({ key: id, value: reserved(ev('InventoryReserved', 'reserve', { reservationId: `r-${id}` })) });
    messages.push({ key: id, value: charged(ev('PaymentCharged', 'payment', { paymentId: `p-${id}` })) });
    messages.push({ key: id, value: scheduled(ev('ShipmentScheduled', 'shipment', { shipmentId: `s-${id}` })) });
  }
  return produce(conn.kafka, topic, messages);
}

async function main() {
  const [, , first, ...rest] = process.argv;
  if (first === '--child') {
    const [mode, envJson, total] = rest;
    const cpu = process.cpuUsage();
    const r = await child(mode as 'bare' | 'worker', JSON.parse(envJson!), Number(total));
    const used = process.cpuUsage(cpu);
    const out: RunResult = {
      ...r,
      rate: (r.records / r.ms) * 1000,
      cpuUsPerRecord: (used.user + used.system) / r.records,
      maxRssMb: process.resourceUsage().maxRSS / 1024,
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    process.exit(0);
  }
  if (first === '--memory') {
    process.stdout.write(`${JSON.stringify(await memoryPerSaga())}\n`);
    process.exit(0);
  }
  const sagas = Number(first ?? 25_000);
  const rounds = Number(rest[0] ?? 3);
  const p = `bench-saga.${Date.now()}`;
  const env = {
    FULFILMENT_TOPIC: `${p}.fulfilment`,
    COMMANDS_TOPIC: `${p}.commands`,
    OUTCOMES_TOPIC: `${p}.outcomes`,
    SAGA_STATUS_TOPIC: `${p}.status`,
    DLQ_TOPIC: `${p}.dlq`,
    SAGA_TIMEOUT: '10m',
  };
  await applyTopics(
    stack().conn.kafka,
    Object.values(env)
      .filter((v) => v.startsWith(p))
      .map((name) => ({ name, partitions: name.endsWith('dlq') ? 1 : 3, replicas: 1 })),
  );
  const total = await produceInbox(env.FULFILMENT_TOPIC, sagas);
  console.log(`inbox ${env.FULFILMENT_TOPIC}: ${total} records (${sagas} sagas × 4 steps), 3 partitions`);
  const results: Record<'bare' | 'worker', RunResult[]> = { bare: [], worker: [] };
  for (let i = 0; i < rounds; i++) {
    for (const mode of ['bare', 'worker'] as const) {
      const run = spawnSync(process.execPath, [process.argv[1]!, '--child', mode, JSON.stringify(env), String(total)], {
        encoding: 'utf8',
        env: process.env,
      });
      const line = run.stdout.trim().split('\n').pop() ?? '';
      if (run.status !== 0 || !line.startsWith('{')) throw new Error(`${mode} run failed: ${run.stderr}`);
      const r = JSON.parse(line) as RunResult;
      results[mode].push(r);
      console.log(
        `${mode.padEnd(6)} ${Math.round(r.rate).toLocaleString('en')} records/s (${r.records} in ${Math.round(r.ms)} ms), ` +
          `${r.cpuUsPerRecord.toFixed(1)} CPU-µs per record (whole process), peak RSS ${Math.round(r.maxRssMb)} MB`,
      );
    }
  }
  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! };
  };
  const fmt = (x: { median: number; min: number; max: number }, unit: string, d = 0) =>
    `${x.median.toFixed(d)} ${unit} [${x.min.toFixed(d)}..${x.max.toFixed(d)}]`;
  for (const mode of ['bare', 'worker'] as const) {
    const rs = results[mode];
    console.log(
      `${mode}: ${fmt(stats(rs.map((r) => r.rate)), 'records/s')}, ${fmt(stats(rs.map((r) => r.cpuUsPerRecord)), 'CPU-µs/record', 1)}, ` +
        `peak RSS ${fmt(stats(rs.map((r) => r.maxRssMb)), 'MB')}`,
    );
  }
  const ratio = stats(results.worker.map((r) => r.rate)).median / stats(results.bare.map((r) => r.rate)).median;
  console.log(`ratio saga worker / bare consumer (medians): ${ratio.toFixed(2)}`);
  const mem = spawnSync(process.execPath, ['--expose-gc', process.argv[1]!, '--memory'], { encoding: 'utf8' });
  const m = JSON.parse(mem.stdout.trim().split('\n').pop()!) as { bytes: number; instances: number };
  console.log(`memory: ${Math.round(m.bytes)} bytes of heap per in-flight saga (${m.instances} instances, after GC)`);
}

await main();
