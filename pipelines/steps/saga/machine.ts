// The saga instances of one step and their transitions. An instance is plain data (it goes to the changelog as it
// is); a transition computes its messages first and changes the instance only once all of them are made, so that
// an expression that throws leaves the instance as it was.
import { newTraceparent } from '../../kafka/headers.ts';
import type { KeptHistogram } from '../../observe/histogram.ts';
import type { CompiledExpression } from '../../topology/expressions.ts';
import {
  type BuildContext,
  type Output,
  type Processor,
  type RecordContext,
  RejectedRecord,
  type RelPath,
  type SourceRecord,
  type TimeInfo,
  type Vars,
} from '../step.ts';
import type { SagaMessage as Message, SagaConfig, SagaStepConfig as StepConfig } from './config.ts';

type Compensation = NonNullable<StepConfig['compensate']>;
type Updates = Record<string, Record<string, string> | null | undefined>;

/** Headers on every message: participants deduplicate on the message id (saga, step, attempt). */
export const SAGA_HEADERS = {
  'pipelines.saga.id': 'sagaId',
  'pipelines.saga.step': 'sagaStep',
  'pipelines.saga.attempt': 'attempt',
  'pipelines.saga.messageId': 'commandId',
};

/** One command of a step (a step has one, or one per parallel branch). */
export interface Action {
  /** `step`, or `step.branch` for a parallel one: in message ids. */
  key: string;
  step: number;
  command: Message;
  success: Updates;
  failure: Updates;
  compensate: Compensation | undefined;
  at: RelPath;
}

export function actionsOf(s: StepConfig, i: number): Action[] {
  if (s.parallel)
    return s.parallel.map((p, j) => ({
      key: `${s.name}.${p.name}`,
      step: i,
      command: p.command,
      success: p.success,
      failure: p.failure,
      compensate: p.compensate,
      at: ['steps', i, 'parallel', j],
    }));
  return [
    {
      key: s.name,
      step: i,
      command: s.command!,
      success: s.success!,
      failure: s.failure,
      compensate: s.compensate,
      at: ['steps', i],
    },
  ];
}

export type SagaStatus = 'running' | 'compensating' | 'completed' | 'compensated' | 'failed';

/** One saga instance, as kept in the state (and the changelog). */
export interface Instance {
  id: string;
  status: SagaStatus;
  /** Running: the index of the current step. */
  step: number;
  /** Attempt of the current step's commands, or of the current compensation. */
  attempt: number;
  /** Actions whose reply is awaited: the current step's, or the one compensation being run. */
  pending: string[];
  /** Actions that succeeded, in order. */
  done: string[];
  /** Compensations still to run, the next first. */
  undo: string[];
  /** Actions whose compensation is done (or was sent, for a success that came after the saga gave it up). */
  undone: string[];
  /** Wall clock: when the awaited replies time out; for an ended instance, when it is forgotten. */
  deadline: number | null;
  state: Vars;
  reason: string | null;
  startedAt: number;
  updatedAt: number;
  /** The record that started it: timer messages are committed with its partition. */
  origin: { topic: string; partition: number; offset: string };
  /** The W3C traceparent of the start event: every message of the saga continues its trace. */
  trace?: string;
}

/**
 * A copy a transition may change: its lists are new; `state` is replaced, never changed in place, and `origin`
 * is never changed, so both are shared (a deep copy cost 6% of a saga worker's CPU).
 */
function copy(i: Instance): Instance {
  return { ...i, pending: [...i.pending], done: [...i.done], undo: [...i.undo], undone: [...i.undone] };
}

const ENDED: ReadonlySet<SagaStatus> = new Set(['completed', 'compensated', 'failed']);

interface Reply {
  action: Action;
  outcome: 'success' | 'failure';
  compensation: boolean;
  updates: Array<[string, CompiledExpression]>;
}

/** What the step counts; the worker exports them as metrics. */
export interface SagaCounters {
  started: number;
  completed: number;
  compensated: number;
  failed: number;
  timedOut: number;
  retried: number;
  compensations: number;
  duplicates: number;
  late: number;
  unknown: number;
}

/** Bounds (seconds) of the reply times: from a command's latest attempt (or a compensation) to its reply. */
export const REPLY_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export class SagaMachine {
  readonly #c: SagaConfig;
  readonly #now: () => number;
  readonly #key: CompiledExpression;
  readonly #by: CompiledExpression;
  readonly #reply: CompiledExpression | undefined;
  readonly #initial: Array<[string, CompiledExpression]>;
  readonly #steps: Action[][];
  readonly #actions = new Map<string, Action>();
  readonly #replies = new Map<string, Reply>();
  readonly #data = new Map<Message, Array<[string, CompiledExpression]>>();
  readonly #fields = new Set<string>();
  #instances = new Map<string, Instance>();
  #changed: Set<string> | undefined;
  /** Per partition, no deadline falls before this (a lower bound: timers are scanned only once it passes). */
  readonly #due = new Map<number, number>();
  /** Messages of the transition in progress, emitted when it completes. */
  #outbox: Array<[Vars, RecordContext]> = [];
  readonly #replyTimes = new Map<string, KeptHistogram & { counts: Float64Array }>();
  readonly counters: SagaCounters = {
    started: 0,
    completed: 0,
    compensated: 0,
    failed: 0,
    timedOut: 0,
    retried: 0,
    compensations: 0,
    duplicates: 0,
    late: 0,
    unknown: 0,
  };

  constructor(c: SagaConfig, ctx: BuildContext) {
    this.#c = c;
    this.#now = ctx.now;
    this.#key = ctx.compile(c.key);
    this.#by = ctx.compile(c.by);
    this.#reply = c.reply ? ctx.compile(c.reply) : undefined;
    this.#initial = Object.entries(c.state).map(([f, e]) => [f, ctx.compile(e)]);
    const compileData = (m: Message) => {
      if (!this.#data.has(m))
        this.#data.set(
          m,
          Object.entries(m.data).map(([f, e]) => [f, ctx.compile(e)]),
        );
    };
    this.#steps = c.steps.map((s, i) => actionsOf(s, i));
    for (const action of this.#steps.flat()) {
      this.#actions.set(action.key, action);
      compileData(action.command);
      if (action.compensate) compileData(action.compensate);
      const add = (updates: Updates, outcome: Reply['outcome'], compensation: boolean) => {
        for (const [type, u] of Object.entries(updates))
          this.#replies.set(type, {
            action,
            outcome,
            compensation,
            updates: Object.entries(u ?? {}).map(([f, e]) => [f, ctx.compile(e)]),
          });
      };
      add(action.success, 'success', false);
      add(action.failure, 'failure', false);
      add(action.compensate?.success ?? {}, 'success', true);
      add(action.compensate?.failure ?? {}, 'failure', true);
    }
    for (const m of [c.completed, c.compensated, c.failed, c.status]) if (m) compileData(m);
    // Fields that only replies set start as null (expressions may read them before).
    for (const r of this.#replies.values()) for (const [f] of r.updates) this.#fields.add(f);
  }

  processor(): Processor & { counters(): SagaCounters; instances(): IterableIterator<Instance> } {
    return {
      timers: true,
      release: (partition) => {
        for (const [id, inst] of this.#instances) {
          if (inst.origin.partition !== partition) continue;
          this.#instances.delete(id);
          this.#changed?.delete(id);
        }
        this.#due.delete(partition);
      },
      process: (vars, rc, out) => this.#process(vars, rc, out),
      advance: (time, out) => this.#advance(time, out),
      snapshot: () => Object.fromEntries(this.#instances),
      entries: () => [...this.#instances].map(([key, value]) => ({ key, value })),
      restore: (s) => {
        this.#instances = new Map(Object.entries(s as Record<string, Instance>));
        for (const inst of this.#instances.values()) this.#schedule(inst);
      },
      changes: () => {
        if (!this.#changed) {
          this.#changed = new Set();
          return [];
        }
        const out: Array<[string, unknown]> = [];
        for (const id of this.#changed) out.push([id, this.#instances.get(id) ?? null]);
        this.#changed.clear();
        return out;
      },
      load: (id, v) => {
        if (v === null) this.#instances.delete(id);
        else {
          this.#instances.set(id, v as Instance);
          this.#schedule(v as Instance);
        }
      },
      counters: () => this.counters,
      instances: () => this.#instances.values(),
      observe: () => {
        const held: Record<string, number> = {};
        for (const inst of this.#instances.values()) {
          const where =
            inst.status === 'running'
              ? `running:${this.#c.steps[inst.step]!.name}`
              : inst.status === 'compensating'
                ? `compensating:${inst.pending[0] ?? ''}`
                : inst.status;
          held[where] = (held[where] ?? 0) + 1;
        }
        return { counts: { ...this.counters }, held, replies: [...this.#replyTimes.values()] };
      },
    };
  }

  #process(vars: Vars, rc: RecordContext, out: Output): void {
    const type = String(this.#by.evaluate(vars));
    if (type === this.#c.start) {
      this.#transition(String(this.#key.evaluate(vars)), out, (id, inst) => {
        if (inst) {
          this.counters.duplicates++;
          return undefined;
        }
        return this.#start(id, vars, rc);
      });
      return;
    }
    const reply = this.#replies.get(type);
    // Not an event of this saga.
    if (!reply) return;
    const id = String(this.#key.evaluate(vars));
    if (!this.#instances.has(id)) {
      this.counters.unknown++;
      out.reject(rc, new RejectedRecord('UnknownSaga', `no saga '${id}' waits for ${type}`));
      return;
    }
    if (this.#reply) {
      const answers = String(this.#reply.evaluate(vars));
      if (!answers.startsWith(`${id}:${reply.action.key}:`)) {
        this.counters.duplicates++;
        return;
      }
    }
    this.#transition(id, out, (_, inst) => this.#onReply(copy(inst!), reply, type, vars, rc));
  }

  /** Runs one transition on a copy; the instance and its messages are kept only when all of it worked. */
  #transition(id: string, out: Output, step: (id: string, inst: Instance | undefined) => Instance | undefined): void {
    this.#outbox = [];
    const next = step(id, this.#instances.get(id));
    if (!next) return;
    next.updatedAt = this.#now();
    if (this.#c.status) {
      const time = next.updatedAt;
      const rc = this.#outbox[0]?.[1] ?? { record: this.#originRecord(next, time), time };
      this.#message(next, 'status', this.#c.status, this.#waitingFor(next), next.attempt, rc);
    }
    this.#instances.set(id, next);
    this.#changed?.add(id);
    this.#schedule(next);
    for (const [v, c] of this.#outbox) out.emit(v, c);
    this.#outbox = [];
  }

  #start(id: string, vars: Vars, rc: RecordContext): Instance {
    const state: Vars = {};
    for (const f of this.#fields) state[f] = null;
    for (const [f, e] of this.#initial) state[f] = e.evaluate(vars);
    const now = this.#now();
    const tp = rc.record.headers?.traceparent;
    const inst: Instance = {
      id,
      status: 'running',
      step: 0,
      attempt: 1,
      pending: [],
      done: [],
      undo: [],
      undone: [],
      deadline: null,
      state,
      reason: null,
      startedAt: now,
      updatedAt: now,
      origin: { topic: rc.record.topic, partition: rc.record.partition, offset: String(rc.record.offset) },
      // One trace per saga: the start event's, or a new one (timer messages have no record to continue from).
      trace: typeof tp === 'string' ? tp : Buffer.isBuffer(tp) ? tp.toString() : newTraceparent(),
    };
    this.#sendStep(inst, 1, rc);
    this.counters.started++;
    return inst;
  }

  #onReply(inst: Instance, reply: Reply, type: string, vars: Vars, rc: RecordContext): Instance | undefined {
    const a = reply.action;
    const apply = () => {
      const v = { ...vars, state: inst.state, saga: this.#sagaVars(inst, a.key) };
      const next = { ...inst.state };
      for (const [f, e] of reply.updates) next[f] = e.evaluate(v);
      inst.state = next;
    };
    if (reply.compensation) {
      if (inst.status !== 'compensating' || inst.pending[0] !== a.key) {
        this.counters.duplicates++;
        return undefined;
      }
      this.#timeReply(inst, `${a.key}:undo`, reply.outcome, a.compensate!.timeout);
      apply();
      inst.pending = [];
      if (reply.outcome === 'failure') {
        inst.reason = `compensation of ${a.key} failed: ${type}`;
        return this.#end(inst, 'failed', rc);
      }
      inst.undone.push(a.key);
      inst.undo.shift();
      return this.#compensateNext(inst, rc);
    }
    if (inst.status === 'running' && inst.pending.includes(a.key)) {
      this.#timeReply(inst, a.key, reply.outcome, this.#c.steps[inst.step]!.timeout);
      apply();
      inst.pending = inst.pending.filter((k) => k !== a.key);
      if (reply.outcome === 'failure') {
        inst.reason = `${a.key} failed: ${type}`;
        inst.pending = [];
        return this.#compensate(inst, rc);
      }
      inst.done.push(a.key);
      if (inst.pending.length > 0) return inst;
      inst.step++;
      if (inst.step === this.#steps.length) return this.#end(inst, 'completed', rc);
      this.#sendStep(inst, 1, rc);
      return inst;
    }
    // The participant did the work after the saga gave the step up (a timeout, a failed branch): undo it too.
    const undoable =
      reply.outcome === 'success' &&
      a.compensate !== undefined &&
      inst.status !== 'running' &&
      inst.status !== 'completed' &&
      !inst.done.includes(a.key) &&
      !inst.undo.includes(a.key) &&
      !inst.undone.includes(a.key);
    if (!undoable) {
      this.counters.duplicates++;
      return undefined;
    }
    this.counters.late++;
    apply();
    if (inst.status === 'compensating') inst.undo.push(a.key);
    else {
      this.#message(inst, 'compensation', a.compensate!, a.key, 1, rc);
      this.counters.compensations++;
      inst.undone.push(a.key);
    }
    return inst;
  }

  /** The awaited reply came: its time since the attempt was sent (the deadline less the timeout). */
  #timeReply(inst: Instance, action: string, outcome: string, timeout: number): void {
    if (inst.deadline === null) return;
    const seconds = Math.max(0, this.#now() - (inst.deadline - timeout)) / 1000;
    const key = `${action}\u0000${outcome}`;
    let t = this.#replyTimes.get(key);
    if (!t) {
      t = {
        labels: { action, outcome },
        bounds: REPLY_SECONDS,
        counts: new Float64Array(REPLY_SECONDS.length),
        sum: 0,
        count: 0,
      };
      this.#replyTimes.set(key, t);
    }
    t.sum += seconds;
    t.count++;
    const i = REPLY_SECONDS.findIndex((b) => seconds <= b);
    if (i >= 0) t.counts[i]!++;
  }

  #sendStep(inst: Instance, attempt: number, rc: RecordContext): void {
    const actions = this.#steps[inst.step]!;
    const step = this.#c.steps[inst.step]!;
    inst.attempt = attempt;
    // A retry resends what is still awaited; a new step sends every branch.
    const keys = attempt === 1 ? actions.map((a) => a.key) : inst.pending;
    inst.pending = [...keys];
    inst.deadline = this.#now() + step.timeout;
    for (const k of keys) this.#message(inst, 'command', this.#actions.get(k)!.command, k, attempt, rc);
  }

  /** Undoes the completed actions, newest first, after `unanswered` ones (given up on, maybe done all the same). */
  #compensate(inst: Instance, rc: RecordContext, unanswered: readonly string[] = []): Instance {
    inst.status = 'compensating';
    inst.undo = [...unanswered, ...[...inst.done].reverse()].filter(
      (k) => this.#actions.get(k)!.compensate && !inst.undone.includes(k),
    );
    return this.#compensateNext(inst, rc);
  }

  #compensateNext(inst: Instance, rc: RecordContext): Instance {
    while (inst.undo.length > 0) {
      const key = inst.undo[0]!;
      const comp = this.#actions.get(key)!.compensate!;
      this.#message(inst, 'compensation', comp, key, 1, rc);
      this.counters.compensations++;
      inst.attempt = 1;
      if (Object.keys(comp.success).length > 0) {
        inst.pending = [key];
        inst.deadline = this.#now() + comp.timeout;
        return inst;
      }
      // No reply to wait for: done once sent.
      inst.undone.push(key);
      inst.undo.shift();
    }
    return this.#end(inst, 'compensated', rc);
  }

  #end(inst: Instance, status: 'completed' | 'compensated' | 'failed', rc: RecordContext): Instance {
    inst.status = status;
    inst.pending = [];
    inst.deadline = this.#now() + this.#c.retain;
    this.counters[status]++;
    const m = this.#c[status];
    if (m) this.#message(inst, 'end', m, status, 1, rc);
    return inst;
  }

  #advance(time: TimeInfo, out: Output): void {
    // End of input (offline) is not the passing of time: no timer fires for it.
    if (time.final) return;
    const now = time.now;
    for (const [p, due] of this.#due) {
      if (time.partition !== undefined && p !== time.partition) continue;
      if (now < due) continue;
      let next = Number.POSITIVE_INFINITY;
      for (const inst of this.#instances.values()) {
        if (inst.origin.partition !== p || inst.deadline === null) continue;
        if (inst.deadline > now) {
          next = Math.min(next, inst.deadline);
          continue;
        }
        if (ENDED.has(inst.status)) {
          this.#instances.delete(inst.id);
          this.#changed?.add(inst.id);
          continue;
        }
        const rc: RecordContext = { record: this.#originRecord(inst, now), time: now };
        this.#transition(inst.id, out, () => this.#timedOut(copy(inst), rc));
        const after = this.#instances.get(inst.id)!;
        if (after.deadline !== null) next = Math.min(next, after.deadline);
      }
      if (next === Number.POSITIVE_INFINITY) this.#due.delete(p);
      else this.#due.set(p, next);
    }
  }

  #timedOut(inst: Instance, rc: RecordContext): Instance {
    if (inst.status === 'running') {
      const step = this.#c.steps[inst.step]!;
      if (inst.attempt <= step.retries) {
        this.counters.retried++;
        this.#sendStep(inst, inst.attempt + 1, rc);
        return inst;
      }
      this.counters.timedOut++;
      inst.reason = `${step.name} timed out (${inst.attempt} attempt${inst.attempt === 1 ? '' : 's'})`;
      const unanswered = step.compensateOnTimeout ? inst.pending : [];
      inst.pending = [];
      return this.#compensate(inst, rc, unanswered);
    }
    // Compensating: the compensation being run had no reply in time.
    const key = inst.pending[0]!;
    const comp = this.#actions.get(key)!.compensate!;
    if (inst.attempt <= comp.retries) {
      this.counters.retried++;
      inst.attempt++;
      inst.deadline = this.#now() + comp.timeout;
      this.#message(inst, 'compensation', comp, key, inst.attempt, rc);
      return inst;
    }
    this.counters.timedOut++;
    inst.reason = `compensation of ${key} timed out (${inst.attempt} attempts)`;
    return this.#end(inst, 'failed', rc);
  }

  /** What an instance waits for: its step (running), the compensation in hand, or its end state. */
  #waitingFor(inst: Instance): string {
    if (inst.status === 'running') return this.#c.steps[inst.step]!.name;
    if (inst.status === 'compensating') return `undo ${inst.pending[0] ?? inst.undo[0] ?? ''}`;
    return inst.status;
  }

  #schedule(inst: Instance): void {
    if (inst.deadline === null) return;
    const p = inst.origin.partition;
    const due = this.#due.get(p);
    if (due === undefined || inst.deadline < due) this.#due.set(p, inst.deadline);
  }

  #sagaVars(inst: Instance, step: string) {
    return {
      id: inst.id,
      step,
      attempt: inst.attempt,
      status: inst.status,
      reason: inst.reason,
      startedAt: inst.startedAt,
      now: this.#now(),
    };
  }

  /** Makes one message; it is emitted when the transition completes. */
  #message(
    inst: Instance,
    kind: 'command' | 'compensation' | 'end' | 'status',
    m: Message,
    step: string,
    attempt: number,
    rc: RecordContext,
  ) {
    const id =
      kind === 'status'
        ? `${inst.id}:${inst.status}:${step}:${attempt}`
        : kind === 'end'
          ? `${inst.id}:${step}`
          : kind === 'compensation'
            ? `${inst.id}:${step}:undo:${attempt}`
            : `${inst.id}:${step}:${attempt}`;
    const scope = { state: inst.state, saga: { ...this.#sagaVars(inst, step), attempt } };
    const data: Vars = {};
    for (const [f, e] of this.#data.get(m)!) data[f] = e.evaluate(scope);
    const record = inst.trace ? { ...rc.record, headers: { traceparent: inst.trace } } : rc.record;
    this.#outbox.push([
      {
        sagaMessage: m.type,
        sagaKind: kind,
        sagaId: inst.id,
        sagaStep: step,
        attempt,
        commandId: id,
        commandType: m.type,
        eventId: id,
        eventType: m.type,
        timestamp: this.#now(),
        status: inst.status,
        reason: inst.reason,
        startedAt: inst.startedAt,
        data,
      },
      { record, time: rc.time },
    ]);
  }

  #originRecord(inst: Instance, now: number): SourceRecord {
    return { ...inst.origin, key: inst.id, value: null, timestamp: now };
  }
}
