// `pipelines run <file>`: the topology as a Kafka worker (see runtime/launch.ts), until SIGTERM or SIGINT.
// `pipelines run <file> --dry-run --input <events.jsonl>`: the topology on a file of events, no service needed;
// prints what each sink would receive (JSON lines, prefixed by the sink id) and the dead letters. A line that is
// not JSON or not an event of the source's schemas is a dead letter of its own line (as the worker would
// dead-letter a record it cannot decode), and the run goes on. Records an enrich step still holds at the end of
// the input (waiting for a table row) are listed as `held`, before the end-of-input flush ends their wait and
// applies `afterWait` to them; a summary line on stderr counts each kind.
import { readFileSync } from 'node:fs';
import { loadTopology } from '../runtime/load.ts';
import { InputError, TopologyTestDriver } from '../testing/driver.ts';
import { TopologyError } from '../topology/diagnostics.ts';
import { parseOptions, usage, userError, wholeNumber } from './args.ts';
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
  const batchSize = wholeNumber('batch', values.batch, 1000);
  let batch: { value: unknown; partition?: number; key?: unknown; offset: number }[] = [];
  // Offsets given here rather than by the driver, so that a held record leads back to its input line.
  const next = new Map<number, number>();
  const lineOf = new Map<string, number>();
  let events = 0;
  let bad = 0;
  let dead = 0;
  const flushBatch = () => {
    if (batch.length) dead += print(driver.pipe(batch));
    batch = [];
  };
  const badLine = (n: number, errorClass: string, message: string) => {
    bad++;
    process.stdout.write(
      `dead-letter\t${JSON.stringify({ line: `${input}:${n}`, stepId: 'decode', errorClass, message })}\n`,
    );
  };
  for (const [n, line] of lines(input)) {
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (err) {
      badLine(n, 'NOT_JSON', (err as Error).message);
      continue;
    }
    // A line is an event, or {"value": event, "partition": p, "key": k}.
    const record =
      v && typeof v === 'object' && 'value' in v ? (v as { value: unknown; partition?: number }) : { value: v };
    const problems = driver.inputProblems(record.value);
    if (problems) {
      badLine(n, 'INPUT_INVALID', problems.join('; '));
      continue;
    }
    events++;
    const partition = record.partition ?? 0;
    const offset = next.get(partition) ?? 0;
    next.set(partition, offset + 1);
    lineOf.set(`${partition}/${offset}`, n);
    batch.push({ ...record, offset });
    if (batch.length >= batchSize) flushBatch();
  }
  let held = 0;
  try {
    flushBatch();
    for (const h of plan.held()) {
      held++;
      const n = lineOf.get(`${h.record.partition}/${String(h.record.offset)}`);
      process.stdout.write(`held\t${JSON.stringify({ step: h.step, key: h.key, line: `${input}:${n}` })}\n`);
    }
    dead += print(driver.flush());
  } catch (err) {
    // A sink that cannot encode what a step made: the topology's problem, not the input's.
    if (err instanceof InputError) throw userError(`${file}: ${err.message}`);
    throw err;
  }
  const deadLetters = plan.topology.spec.errors.deadLetter
    ? `${bad + dead} dead letter(s)`
    : `${bad + dead} record(s) the worker would stop on (no errors.deadLetter)`;
  const waits = held ? `, ${held} record(s) held by a table wait at the end (then afterWait)` : '';
  process.stderr.write(`dry run: ${events} event(s) processed, ${bad} bad input line(s), ${deadLetters}${waits}\n`);
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

/** A --tables line as JSON; a bad one stops the run (the tables are the run's set-up, not its input). */
function parse(file: string, n: number, line: string): unknown {
  try {
    return JSON.parse(line);
  } catch (err) {
    throw userError(`${file}:${n}: not JSON: ${(err as Error).message}`);
  }
}

/** Prints a batch's outputs and dead letters; returns how many dead letters. */
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
  return result.deadLetters.length;
}
