// The offline test driver (after Kafka Streams' TopologyTestDriver): the very same plan, no broker.
// Pipe records in (each call is one batch), move the wall clock, feed tables, read what each sink received,
// the dead letters and the state of each step. Input values are checked against the source's Avro schemas and
// decoded through them, as the worker would; Kafka sink values are encoded with their schema, as the producer would.

import type { CompileOptions } from '../compile/compile.ts';
import { PipelinesError } from '../errors.ts';
import { loadPlan } from '../runtime/load.ts';
import type { DeadLetter, Plan, SourceRecord } from '../runtime/plan.ts';
import type { StateEntry } from '../steps/step.ts';
import type { LoadedSchema } from '../topology/avro.ts';
import { matchSchema } from '../topology/avro.ts';
import { parseDuration } from '../topology/durations.ts';

export interface TestRecord {
  value: unknown;
  key?: unknown;
  partition?: number;
  /** Kafka record timestamp; default: `value.timestamp` when it is a number, else the driver's clock. */
  timestamp?: number;
  topic?: string;
  /** A source under spec.sources, by name: the record is on its topic. */
  source?: string;
  offset?: number;
  headers?: Record<string, string>;
}

export interface DriverOptions {
  /** Initial wall clock, epoch ms (default 0). */
  now?: number;
  /** Check and decode input values through the source's Avro schemas (default true when it has some). */
  checkInput?: boolean;
}

/** An input value that does not match the source schemas. */
export class InputError extends PipelinesError {
  readonly problems: string[];
  /** Which record of the piped list it was, for the caller to point at its own line. */
  index?: number;
  constructor(message: string, problems: string[]) {
    super('INPUT_INVALID', `${message}: ${problems.join('; ')}`);
    this.name = 'InputError';
    this.problems = problems;
  }
}

export class TopologyTestDriver {
  readonly plan: Plan;
  #now: number;
  readonly #schemas: LoadedSchema[];
  /** Next offset per `topic/partition`. */
  readonly #offsets = new Map<string, number>();
  readonly #outputs: Record<string, unknown[]> = {};
  readonly #deadLetters: DeadLetter[] = [];
  readonly #encoders = new Map<string, LoadedSchema['type']>();

  static async load(file: string, opts: DriverOptions & CompileOptions = {}): Promise<TopologyTestDriver> {
    return new TopologyTestDriver(await loadPlan(file, opts), opts);
  }

  constructor(plan: Plan, opts: DriverOptions = {}) {
    this.plan = plan;
    this.#now = opts.now ?? 0;
    this.#schemas = opts.checkInput === false ? [] : plan.checked.schemas;
    for (const s of plan.sinks) {
      this.#outputs[s.id] = [];
      const t = s.writer.valueType;
      if (t) this.#encoders.set(s.id, t);
    }
  }

  get now(): number {
    return this.#now;
  }

  get watermark(): number {
    return this.plan.watermark;
  }

  /** One batch: records (or plain event values) in, in order. Returns what this batch produced. */
  pipe(input: TestRecord | readonly TestRecord[]) {
    const list = Array.isArray(input) ? input : [input];
    const records = list.map((r, i) => {
      try {
        return this.#record(r as TestRecord);
      } catch (err) {
        if (err instanceof InputError) err.index = i;
        throw err;
      }
    });
    return this.#collect(this.plan.process(records, this.#now));
  }

  /** One batch of event values on partition 0 (or the given one). */
  pipeValues(values: readonly unknown[], opts: Omit<TestRecord, 'value'> = {}) {
    return this.pipe(values.map((value) => ({ ...opts, value })));
  }

  /** Moves the wall clock (enrich waits, idle partitions) and lets the plan act on it. */
  advanceWallClock(by: number | string) {
    this.#now += typeof by === 'string' ? parseDuration(by) : by;
    return this.#collect(this.plan.tick(this.#now));
  }

  /** End of input: every window closes, every wait ends. */
  flush() {
    return this.#collect(this.plan.flush(this.#now));
  }

  table(name: string) {
    const tables = this.plan.tables;
    return {
      upsert: (row: unknown, key?: string | number) => {
        const k = key ?? tables.keyOf(name, row);
        if (k === undefined)
          throw new InputError(`table '${name}'`, ['a row needs a key (the key field, or pass one)']);
        tables.upsert(name, k, row);
      },
      delete: (key: string | number) => tables.delete(name, key),
    };
  }

  /** Why a value would not decode as an input record (no source schema takes it), or undefined when it would. */
  inputProblems(value: unknown): string[] | undefined {
    if (this.#schemas.length === 0) return undefined;
    const m = matchSchema(this.#schemas, value);
    return 'problems' in m ? m.problems.map((p) => p.message) : undefined;
  }

  /** Everything a sink received so far. */
  output(sinkId: string): unknown[] {
    const out = this.#outputs[sinkId];
    if (!out) throw new InputError('unknown sink', [`'${sinkId}' (sinks: ${Object.keys(this.#outputs).join(', ')})`]);
    return out;
  }

  outputs(): Record<string, unknown[]> {
    return this.#outputs;
  }

  deadLetters(): DeadLetter[] {
    return this.#deadLetters;
  }

  /** The state entries a step holds (a fold's states, a dedupe's keys, an aggregate's open windows), as plain data. */
  state(stepId: string): StateEntry[] {
    const all = this.plan.entries();
    const entries = all[stepId];
    if (!entries)
      throw new InputError('no step state', [`'${stepId}' (steps with state: ${Object.keys(all).join(', ')})`]);
    return entries.map((e) => plain(e) as StateEntry);
  }

  #record(r: TestRecord): SourceRecord {
    if (!r || typeof r !== 'object' || !('value' in r)) throw new InputError('an input record', ['needs a `value`']);
    const partition = r.partition ?? 0;
    let topic = r.topic ?? this.plan.topics.source;
    if (r.source !== undefined) {
      const named = this.plan.topology.spec.sources[r.source];
      if (!named)
        throw new InputError('an input record', [
          `no source '${r.source}' (spec.sources: ${Object.keys(this.plan.topology.spec.sources).join(', ') || 'none'})`,
        ]);
      topic = named.topic;
    }
    const at = `${topic}/${partition}`;
    const offset = r.offset ?? this.#offsets.get(at) ?? 0;
    this.#offsets.set(at, offset + 1);
    let value = r.value;
    if (this.#schemas.length > 0) {
      const m = matchSchema(this.#schemas, value);
      if ('problems' in m)
        throw new InputError(
          `input at partition ${partition} offset ${offset}`,
          m.problems.map((p) => p.message),
        );
      // As the worker: bytes on the wire, decoded by the reader schema (avsc records, defaults filled in).
      value = m.schema.type.fromBuffer(m.schema.type.toBuffer(value));
    }
    const ts = (value as { timestamp?: unknown } | null)?.timestamp;
    return {
      topic,
      partition,
      offset,
      key: r.key ?? null,
      value,
      timestamp: r.timestamp ?? (typeof ts === 'number' ? ts : this.#now),
      headers: r.headers ?? {},
    };
  }

  #collect(result: ReturnType<Plan['process']>) {
    for (const [id, rows] of Object.entries(result.sinks)) {
      const enc = this.#encoders.get(id);
      for (const row of rows) {
        let out = row;
        if (enc) {
          const rec = row as { key: unknown; value: unknown; set?: Record<string, string> };
          const problems: string[] = [];
          if (!enc.isValid(rec.value, { errorHook: (p: string[]) => problems.push(p.join('.')) })) {
            throw new InputError(
              `sink '${id}' cannot encode a value with its Avro schema`,
              problems.map((p) => `field ${p}`),
            );
          }
          out = {
            key: rec.key,
            value: plain(enc.fromBuffer(enc.toBuffer(rec.value))),
            ...(rec.set ? { headers: rec.set } : {}),
          };
        }
        this.#outputs[id]!.push(plain(out));
      }
      result.sinks[id] = rows.length === 0 ? [] : this.#outputs[id]!.slice(-rows.length);
    }
    this.#deadLetters.push(...result.deadLetters);
    return result;
  }
}

/** Plain data (no avsc record classes), for comparisons and printing. */
export function plain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Uint8Array || v instanceof Date || v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = plain(x);
  return out;
}
