// `pipelines run <file>`: the topology as a Kafka worker (see runtime/launch.ts), until SIGTERM or SIGINT.
// `pipelines run <file> --dry-run --input <events.jsonl>`: the topology on a file of events, no service needed;
// prints what each sink would receive (JSON lines, prefixed by the sink id) and the dead letters.
import { readFileSync } from 'node:fs';
import { loadTopology } from '../runtime/load.ts';
import { InputError, TopologyTestDriver } from '../testing/driver.ts';
import { TopologyError } from '../topology/diagnostics.ts';
import { parseOptions, usage, usageError, userError } from './args.ts';
import { runWorker } from './run-worker.ts';

export async function run(args: string[]): Promise<number> {
  if (!args.includes('--dry-run')) return runWorker(args);
  const { values, positionals } = parseOptions(args, {
    'dry-run': { type: 'boolean' },
    input: { type: 'string' },
    tables: { type: 'string' },
    batch: { type: 'string' },
  });
  const [file] = positionals;
  const input = values.input;
  if (!file || !input)
    throw usage('run <topology.yaml> --dry-run --input <events.jsonl> [--tables <rows.jsonl>] [--batch N]');
  const { diagnostics, plan } = await loadTopology(file);
  if (!plan) throw new TopologyError(diagnostics);
  const driver = new TopologyTestDriver(plan);
  const tables = values.tables;
  if (tables) {
    // Lines of {"table": "customers", "row": {...}}.
    for (const [n, line] of lines(tables)) {
      const t = parse(tables, n, line) as { table?: string; row?: unknown };
      if (!t.table || !t.row) throw userError(`${tables}:${n}: expected {"table": ..., "row": {...}}`);
      driver.table(t.table).upsert(t.row);
    }
  }
  const batchSize = Number(values.batch ?? 1000);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw usageError(`--batch: a whole number above 0, not '${values.batch}'`);
  let batch: { value: unknown; partition?: number; key?: unknown }[] = [];
  const flushBatch = () => {
    if (batch.length) print(driver.pipe(batch));
    batch = [];
  };
  let lineNo = 0;
  try {
    for (const [n, line] of lines(input)) {
      lineNo = n;
      const v = parse(input, n, line) as Record<string, unknown>;
      // A line is an event, or {"value": event, "partition": p, "key": k}.
      batch.push(v && typeof v === 'object' && 'value' in v ? (v as { value: unknown }) : { value: v });
      if (batch.length >= batchSize) flushBatch();
    }
    flushBatch();
  } catch (err) {
    // Input problems name the batch that held the line; --batch 1 pins them to one line.
    if (err instanceof InputError) throw userError(`${input}:${lineNo}: ${err.message}`);
    throw err;
  }
  print(driver.flush());
  return 0;
}

function lines(file: string): [number, string][] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw userError(`cannot read ${file}`);
  }
  return text
    .split('\n')
    .map((l, i) => [i + 1, l.trim()] as [number, string])
    .filter(([, l]) => l !== '' && !l.startsWith('#') && !l.startsWith('//'));
}

function parse(file: string, n: number, line: string): unknown {
  try {
    return JSON.parse(line);
  } catch (err) {
    throw userError(`${file}:${n}: not JSON: ${(err as Error).message}`);
  }
}

function print(result: {
  sinks: Record<string, unknown[]>;
  deadLetters: {
    stepId: string;
    errorClass: string;
    message: string;
    record: { partition: number; offset: unknown };
  }[];
}) {
  for (const [id, rows] of Object.entries(result.sinks))
    for (const r of rows) process.stdout.write(`${id}\t${JSON.stringify(r)}\n`);
  for (const d of result.deadLetters) {
    process.stdout.write(
      `dead-letter\t${JSON.stringify({ stepId: d.stepId, errorClass: d.errorClass, message: d.message, partition: d.record.partition, offset: String(d.record.offset) })}\n`,
    );
  }
}
