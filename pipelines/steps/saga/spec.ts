// `saga`: a long-running order workflow coordinated over Kafka. Commands out, replies in (on the source topic),
// compensations in reverse order on a failure or a timeout. The instances are step state: restored from the
// changelog like a fold's, their timers with them. `machine.ts` runs them; this file is the format and its checks.

import { loadAvsc } from '../../topology/avro.ts';
import { didYouMean } from '../../topology/diagnostics.ts';
import type { FieldType, Scope } from '../../topology/types.ts';
import { DYN, EPOCH_MS, INTEGER, mergeTypes, nullable, STRING } from '../../topology/types.ts';
import { type CheckContext, defineStep, type RelPath, slug } from '../step.ts';
import { type SagaConfig, type SagaMessage, sagaConfig } from './config.ts';
import { actionsOf, SAGA_HEADERS, SagaMachine } from './machine.ts';

export const saga = defineStep({
  kind: 'saga',
  summary: 'A long-running workflow: commands, replies, timeouts, retries and compensations, per correlation key.',
  description:
    'A saga instance per `key` starts on a `start` event and runs `steps` in order: each sends its command (or ' +
    'its `parallel` commands) and waits for a reply of its `success` or `failure` types, on the source topic, ' +
    'matched by `key`. No reply within `timeout`: the command is sent again (`retries`), then the step has ' +
    'failed. On a failure, the compensations of the completed steps are sent in reverse order, each waiting for ' +
    'its own reply. An instance ends in exactly one state: completed, compensated, or failed (a compensation ' +
    'failed), and sends the `completed`, `compensated` or `failed` event if given. `state` declares the fields ' +
    'the instance keeps (set from the start event, then by replies). Every message is keyed by the saga id and ' +
    'carries `pipelines.saga.*` headers (id, step, attempt, message id: deterministic, so that participants can ' +
    'deduplicate); a duplicate or late reply is ignored and counted; a reply for no known saga is dead-lettered. ' +
    "The step's output is the messages it sends: each goes to its topic through a Kafka sink the saga declares " +
    '(id `<step id>:<type>`), in the same transaction as the state changes and the offsets (`exactlyOnce`). ' +
    'Timers are wall clock. State: the instances, kept `retain` after they end.',
  config: sagaConfig,
  examples: [
    {
      key: 'event.data.orderId',
      start: 'OrderPlaced',
      state: { orderId: 'event.data.orderId', amount: 'event.data.totalAmount' },
      steps: [
        {
          name: 'reserve',
          command: {
            type: 'ReserveInventory',
            topic: 'orders.commands',
            schema: 'schemas/saga/ReserveInventory.avsc',
            data: { orderId: 'state.orderId' },
          },
          success: { InventoryReserved: { reservationId: 'event.data.reservationId' } },
          failure: { InventoryRejected: { reason: 'event.data.reason' } },
          timeout: '10s',
          retries: 2,
          compensate: {
            type: 'ReleaseInventory',
            topic: 'orders.commands',
            schema: 'schemas/saga/ReleaseInventory.avsc',
            data: { orderId: 'state.orderId', reservationId: 'state.reservationId' },
          },
        },
      ],
      compensated: {
        type: 'OrderCancelled',
        topic: 'orders.events',
        schema: 'schemas/OrderCancelled.avsc',
        data: { orderId: 'state.orderId', reason: 'saga.reason' },
      },
    },
  ],
  stateful: true,
  describe: (c) => `${c.start} by ${c.key}: ${c.steps.map((s) => s.name).join(' → ')}`,
  idHint: (c) => slug(c.start),
  sinks(c, stepId) {
    const out: Array<{ kind: string; config: Record<string, unknown>; at: RelPath }> = [];
    const seen = new Set<string>();
    for (const { msg, at } of messagesOf(c)) {
      if (seen.has(msg.type)) continue;
      seen.add(msg.type);
      out.push({
        kind: 'kafka',
        at,
        config: {
          id: `${stepId}:${msg.type}`,
          from: stepId,
          when: `sagaMessage == '${msg.type}'`,
          topic: msg.topic,
          key: 'sagaId',
          value: { format: 'avro', schema: msg.schema, subjects: 'TopicRecordName' },
          headers: SAGA_HEADERS,
          exactlyOnce: c.exactlyOnce,
        },
      });
    }
    return out;
  },
  check(c, ctx) {
    const cfg = c;
    ctx.expr(c.key, ['key']);
    ctx.expr(c.by, ['by']);
    const typeOf = (type: string, at: RelPath): FieldType | undefined => {
      const t = ctx.eventTypes.get(type);
      if (ctx.eventTypes.size > 0 && !t)
        ctx.report(
          'ref-unknown-event-type',
          `no event type '${type}' on the source`,
          at,
          didYouMean(type, ctx.eventTypes.keys()),
        );
      return t;
    };
    const start = typeOf(c.start, ['start']);
    // The state's fields and types: from `state` (on the start event), merged with what each reply sets.
    const fields: Record<string, FieldType> = {};
    const initial = new Set(Object.keys(c.state));
    for (const [f, e] of Object.entries(c.state))
      fields[f] = ctx.expr(e, ['state', f], { scope: { ...ctx.scope, ...(start ? { event: start } : {}) } }) ?? DYN;
    const replyTypes = new Map<string, RelPath>();
    const names = new Set(Object.keys(fields));
    for (const r of repliesOf(cfg)) for (const f of Object.keys(r.updates ?? {})) names.add(f);
    const loose: FieldType = {
      kind: 'record',
      name: 'State',
      fields: Object.fromEntries([...names].map((n) => [n, DYN])),
    };
    for (const r of repliesOf(cfg)) {
      const at = r.at;
      const before = replyTypes.get(r.type);
      if (before) {
        ctx.report(
          'saga-invalid',
          `reply type '${r.type}' is used twice in this saga: a reply must name one step`,
          at,
          `one reply type per outcome (seen at ${before.join('.')})`,
        );
      }
      replyTypes.set(r.type, at);
      if (r.type === c.start) ctx.report('saga-invalid', `'${r.type}' starts the saga and cannot also be a reply`, at);
      const ev = typeOf(r.type, at);
      const scope: Scope = { ...ctx.scope, state: loose, saga: SAGA_TYPE, ...(ev ? { event: ev } : {}) };
      for (const [f, e] of Object.entries(r.updates ?? {})) {
        const t = ctx.expr(e, [...at, f], { scope }) ?? DYN;
        fields[f] = fields[f] ? mergeTypes(fields[f], t) : t;
      }
      if (c.reply) ctx.expr(c.reply, ['reply'], { scope: { ...ctx.scope, ...(ev ? { event: ev } : {}) } });
    }
    const state: FieldType = {
      kind: 'record',
      name: 'State',
      fields: Object.fromEntries(Object.entries(fields).map(([f, t]) => [f, initial.has(f) ? t : nullable(t)])),
    };
    const stepNames = new Set<string>();
    c.steps.forEach((s, i) => {
      if (stepNames.has(s.name))
        ctx.report('saga-invalid', `step name '${s.name}' is used twice`, ['steps', i, 'name']);
      stepNames.add(s.name);
    });
    const types = new Map<string, { topic: string; schema: string }>();
    for (const { msg, at } of messagesOf(cfg)) {
      const before = types.get(msg.type);
      if (before && (before.topic !== msg.topic || before.schema !== msg.schema))
        ctx.report(
          'saga-invalid',
          `message type '${msg.type}' is sent to two topics or with two schemas`,
          at,
          'one type, one topic and one schema',
        );
      types.set(msg.type, msg);
      checkMessage(msg, at, { state, saga: SAGA_TYPE }, ctx);
    }
    return MESSAGE_SCOPE;
  },
  create(c, ctx) {
    return new SagaMachine(c, ctx).processor();
  },
});

/** `saga` in expressions: the instance as it is when the message is made. */
const SAGA_TYPE: FieldType = {
  kind: 'record',
  name: 'Saga',
  fields: {
    id: STRING,
    step: STRING,
    attempt: INTEGER,
    status: STRING,
    reason: nullable(STRING),
    startedAt: EPOCH_MS,
    now: EPOCH_MS,
  },
};

/** What the step emits: one record per message, the envelope fields any message schema may take. */
const MESSAGE_SCOPE: Scope = {
  sagaMessage: STRING,
  sagaKind: STRING,
  sagaId: STRING,
  sagaStep: STRING,
  attempt: INTEGER,
  commandId: STRING,
  commandType: STRING,
  eventId: STRING,
  eventType: STRING,
  timestamp: EPOCH_MS,
  status: STRING,
  reason: nullable(STRING),
  startedAt: EPOCH_MS,
  data: DYN,
};

type Message = SagaMessage;

/** Every message the saga can send, with where it is written. */
function messagesOf(c: SagaConfig): Array<{ msg: Message; at: RelPath }> {
  const out: Array<{ msg: Message; at: RelPath }> = [];
  c.steps.forEach((s, i) => {
    for (const a of actionsOf(s, i)) {
      out.push({ msg: a.command, at: [...a.at, 'command'] });
      if (a.compensate) out.push({ msg: a.compensate, at: [...a.at, 'compensate'] });
    }
  });
  for (const end of ['completed', 'compensated', 'failed', 'status'] as const) {
    const m = c[end];
    if (m) out.push({ msg: m, at: [end] });
  }
  return out;
}

/** Every reply type the saga waits for, with the state fields it sets. */
function repliesOf(c: SagaConfig) {
  const out: Array<{ type: string; updates: Record<string, string> | null | undefined; at: RelPath }> = [];
  c.steps.forEach((s, i) => {
    for (const a of actionsOf(s, i)) {
      for (const [k, where] of [
        [a.success, 'success'],
        [a.failure, 'failure'],
      ] as const)
        for (const [type, u] of Object.entries(k)) out.push({ type, updates: u, at: [...a.at, where, type] });
      for (const where of ['success', 'failure'] as const)
        for (const [type, u] of Object.entries(a.compensate?.[where] ?? {}))
          out.push({ type, updates: u, at: [...a.at, 'compensate', where, type] });
    }
  });
  return out;
}

const ENVELOPE = new Set(Object.keys(MESSAGE_SCOPE));

/** A message against its schema: its name, the envelope fields it takes, and the fields of its `data`. */
function checkMessage(msg: Message, at: RelPath, scope: Scope, ctx: CheckContext): void {
  for (const [f, e] of Object.entries(msg.data)) ctx.expr(e, [...at, 'data', f], { scope });
  const file = ctx.file(msg.schema, [...at, 'schema']);
  if (!file) return;
  let schema: ReturnType<typeof loadAvsc>;
  try {
    schema = loadAvsc(file);
  } catch (err) {
    ctx.report('ref-schema-invalid', `invalid Avro schema: ${(err as Error).message}`, [...at, 'schema']);
    return;
  }
  if (schema.shortName !== msg.type) {
    ctx.report(
      'saga-invalid',
      `message type '${msg.type}' but its schema is the record '${schema.shortName ?? schema.type.typeName}'`,
      [...at, 'type'],
      `type: ${schema.shortName ?? '<the record name>'}`,
    );
  }
  type Field = { name: string; type: { typeName: string; fields?: Field[] }; defaultValue(): unknown };
  const top = (schema.type as unknown as { fields?: Field[] }).fields ?? [];
  for (const f of top) {
    if (!ENVELOPE.has(f.name) && f.defaultValue() === undefined)
      ctx.report(
        'sink-unknown-column',
        `field '${f.name}' of ${msg.type} is not one the saga fills in`,
        [...at, 'schema'],
        `a message has ${[...ENVELOPE].filter((n) => !n.startsWith('saga')).join(', ')}, or a field with a default`,
      );
  }
  const data = top.find((f) => f.name === 'data')?.type.fields;
  if (!data) {
    if (Object.keys(msg.data).length > 0)
      ctx.report('saga-invalid', `the schema of ${msg.type} has no \`data\` record for these fields`, [...at, 'data']);
    return;
  }
  for (const f of data)
    if (!(f.name in msg.data) && f.defaultValue() === undefined)
      ctx.report(
        'sink-unknown-column',
        `field 'data.${f.name}' of ${msg.type} is not set`,
        [...at, 'data'],
        `add ${f.name}: <expression>`,
      );
  const known = data.map((f) => f.name);
  for (const f of Object.keys(msg.data))
    if (!known.includes(f))
      ctx.report(
        'sink-unknown-column',
        `${msg.type}'s data has no field '${f}'`,
        [...at, 'data', f],
        didYouMean(f, known),
      );
}
