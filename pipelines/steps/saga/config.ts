// The format of a saga (its zod schema: the only declaration of its fields, with their descriptions).
import { z } from 'zod';
import { duration, expression, identifier } from '../../topology/durations.ts';

const updates = z
  .record(identifier(), expression('the new value of the state field'))
  .nullish()
  .describe('State fields set by this reply (expressions over `event`, the reply, and `state`); may be empty.');

const replies = (what: string) => z.record(z.string(), updates).describe(what);

const message = {
  type: identifier().describe("The message's type: the short name of its Avro record (the schema's `name`)."),
  topic: z.string().min(1).describe('Topic the message is sent to (keyed by the saga id).'),
  schema: z.string().describe('Avro schema file (.avsc) of the message, relative to the topology.'),
  data: z
    .record(identifier(), expression('a field of the message'))
    .default({})
    .describe(
      "Fields of the message's `data` record, as expressions over `state` and `saga` (id, step, attempt, status, " +
        'reason, startedAt, now). The envelope (commandId or eventId, commandType or eventType, sagaId, sagaStep, ' +
        'attempt, timestamp) is filled in for the fields the schema has.',
    ),
};

const timeout = duration().prefault('30s').describe('How long to wait for a reply (wall clock) before a retry.');
const retries = z
  .number()
  .int()
  .min(0)
  .default(0)
  .describe('Times the command is sent again (a new attempt, a new command id) when no reply came in time.');

const compensation = z
  .strictObject({
    ...message,
    success: replies('Reply types that confirm the compensation; without any, it is done once sent.').default({}),
    failure: replies('Reply types that say the compensation failed: the saga ends failed-to-compensate.').default({}),
    timeout,
    retries: retries.default(3),
  })
  .describe('The command that undoes this one, sent when a later step fails (in reverse order of completion).');

const action = {
  command: z.strictObject(message).describe('The command sent when the step starts.'),
  success: replies('Reply types that mean the command succeeded, with the state fields each sets.'),
  failure: replies('Reply types that mean it failed: the saga compensates what completed.').default({}),
  compensate: compensation.optional(),
};

const parallelAction = z.strictObject({ name: identifier().describe('Name of this branch of the step.'), ...action });

const step = z
  .strictObject({
    name: identifier().describe('Name of the step (in command ids, metrics and the timeline).'),
    command: action.command.optional(),
    success: action.success.optional(),
    failure: action.failure,
    compensate: action.compensate,
    parallel: z
      .array(parallelAction)
      .min(2)
      .optional()
      .describe('Instead of `command`: several commands sent at once; the step succeeds when all have.'),
    timeout,
    retries,
    compensateOnTimeout: z
      .boolean()
      .default(false)
      .describe(
        'When the step is given up for lack of a reply (after its retries), send its own compensation too, first: ' +
          'the participant may have done the work and only its reply was lost. The compensation must tolerate ' +
          'undoing what never happened (key it by the saga id, not by what the reply would have set). Branches ' +
          'of a parallel step that had replied are compensated as completed steps are.',
      ),
  })
  .refine((s) => (s.parallel === undefined) === (s.command !== undefined && s.success !== undefined), {
    message: 'a saga step has either `command` and `success`, or `parallel` (a list of branches)',
  });

const ending = (what: string) => z.strictObject(message).optional().describe(what);

export const sagaConfig = z.strictObject({
  key: expression('the correlation key: the saga instance an event belongs to (converted to a string)'),
  by: expression('the type of an event').default('event.eventType'),
  start: identifier().describe('The event type that starts an instance (a second one for a key is ignored).'),
  state: z
    .record(identifier(), expression('a state field, from the start event'))
    .default({})
    .describe("The instance's own fields, set from the start event (`event`); replies may set these and others."),
  reply: expression('the id of the command a reply answers (e.g. event.data.commandId)')
    .optional()
    .describe(
      'CEL expression: the command id a reply answers. With it, a reply to another step or saga is told apart ' +
        'and ignored; without it, replies are matched by key and type.',
    ),
  steps: z.array(step).min(1).describe('The steps, run in order.'),
  completed: ending('Event sent when every step succeeded.'),
  compensated: ending('Event sent when the compensations of a failed saga are done.'),
  failed: ending('Event sent when a compensation failed (an operator must step in).'),
  status: ending(
    'Record sent on every change of an instance (keyed by the saga id: a compacted topic of the current state of ' +
      'each saga, for a read model): `status`, `sagaStep` (the step waited for, or the end state), `attempt`, ' +
      '`reason`, `startedAt` and `timestamp` are filled in, `data` as for any message.',
  ),
  retain: duration()
    .prefault('24h')
    .describe('How long an ended instance is remembered: a duplicate start or a late reply is recognised.'),
  exactlyOnce: z
    .boolean()
    .default(true)
    .describe('Messages, state changes and offsets in one Kafka transaction (otherwise at least once).'),
});

export type SagaConfig = z.output<typeof sagaConfig>;
export type SagaStepConfig = SagaConfig['steps'][number];
export type SagaMessage = NonNullable<SagaConfig['completed']>;
