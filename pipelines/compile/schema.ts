// The topology file format, composed from the step and sink specs: the one source of the TypeScript types,
// the runtime validation and the editor JSON Schema (topologies/topology.schema.json).
import { z } from 'zod';
import type { TopicSpec } from '../kafka/topics.ts';
import { duration, durationRange, expression, identifier } from '../topology/durations.ts';
import { StepStrict } from './items.ts';
import { sinks, steps } from './kinds.ts';

/** One item of `spec.steps`: `{ <kind>: config }`, plus an optional id and description. */
export const StepItem = z.union(
  steps.map((s) => StepStrict('step', s.kind).describe(`${s.kind}: ${s.summary}`)) as unknown as [
    z.ZodType,
    z.ZodType,
    ...z.ZodType[],
  ],
);

export const SinkItem = z.union(
  sinks.map((s) => StepStrict('sink', s.kind).describe(`${s.kind}: ${s.summary}`)) as unknown as [
    z.ZodType,
    z.ZodType,
    ...z.ZodType[],
  ],
);

export const SourceSchema = z
  .strictObject({
    topic: z.string().min(1).describe('Topic to consume.'),
    group: z.string().min(1).describe('Consumer group id (one topology = one group).'),
    key: z
      .strictObject({ format: z.enum(['string', 'json', 'avro']).default('string').describe('Key encoding.') })
      .prefault({})
      .describe('How the record key is decoded.'),
    value: z
      .strictObject({
        format: z.enum(['avro', 'json']).default('avro').describe('Value encoding.'),
        subjects: z
          .enum(['TopicName', 'RecordName', 'TopicRecordName'])
          .default('TopicName')
          .describe('Subject name strategy; TopicRecordName for several event types on one topic.'),
        schemas: z
          .array(z.string())
          .default([])
          .describe('Reader schemas (.avsc, relative to the topology): one per event type on the topic.'),
      })
      .prefault({})
      .describe('How the record value is decoded, and which fields it has.'),
    eventTime: expression('the event time in epoch ms; default: the Kafka record timestamp').optional(),
    partitionedBy: expression('what the producers key the topic by, e.g. event.data.orderId')
      .optional()
      .describe(
        'What the producers key the topic by, as an expression on the record (e.g. `event.data.orderId`). When ' +
          'given, a fold, a dedupe or an aggregate (other than `emit: perBatch`) keyed by something else gets a ' +
          'repartition step before it, so that it is right with any number of workers; `graph` shows it.',
      ),
    maxOutOfOrderness: duration()
      .prefault('0s')
      .describe('How far behind the newest event time of a partition an event may be and still count as on time.'),
    idleTimeout: duration()
      .prefault('1m')
      .describe(
        'A partition without records for this long (wall clock) stops holding the watermark back, until its next record.',
      ),
    start: z.enum(['earliest', 'latest']).default('earliest').describe('Where a new consumer group starts.'),
  })
  .describe('The topic this topology consumes.');

export const NamedSourceSchema = SourceSchema.omit({ group: true }).describe(
  'Another topic this topology consumes, named for the steps that read it (`from`, `join.with`, `merge.with`); ' +
    'read by consumer group `<group>.<name>`.',
);

export const TableSchema = z.strictObject({
  topic: z.string().min(1).describe('Compacted topic the table is loaded from.'),
  key: z.string().optional().describe('Field of the row that is its key (default: the Kafka record key).'),
  schema: z.string().optional().describe('Avro schema of a row (.avsc, relative to the topology).'),
  description: z.string().optional().describe('What the table holds, for readers of the file and the graph.'),
});

export const ErrorsSchema = z
  .strictObject({
    deadLetter: z.string().optional().describe('Dead-letter topic: failed records, with provenance headers.'),
    onError: z
      .enum(['deadLetter', 'skip', 'fail'])
      .optional()
      .describe('What a record whose processing fails becomes; default deadLetter when a topic is set, else fail.'),
    retry: z
      .strictObject({
        max: z
          .number()
          .int()
          .min(1)
          .optional()
          .describe(
            'Attempts in all for a retriable failure, after which the worker stops with it (exit 1); unbounded ' +
              'when omitted: the worker waits for the service, saying so in its log, metrics and /healthz.',
          ),
        backoff: durationRange().prefault('100ms..10s').describe('Exponential backoff, from..to.'),
      })
      .prefault({})
      .describe('Retries of transient failures (broker, registry, sink writes), each at one level only.'),
  })
  .prefault({})
  .describe('Error policy.');

export const TopicSchema = z.strictObject({
  partitions: z.number().int().min(1).default(1).describe('Partitions: the most workers of a group that share it.'),
  replicas: z.number().int().min(1).default(1).describe('Replication factor (3 in production; 1 on a local broker).'),
  retention: z
    .union([duration(), z.literal('infinite')])
    .optional()
    .describe('retention.ms'),
  cleanup: z.enum(['delete', 'compact', 'compact,delete']).default('delete').describe('cleanup.policy'),
  minInSync: z.number().int().min(1).optional().describe('min.insync.replicas'),
});

/** A topic the topology declares, as the admin client creates it (`topics apply`, the Strimzi resources). */
export function topicSpecOf(name: string, d: z.output<typeof TopicSchema>): TopicSpec & { cleanup: typeof d.cleanup } {
  return {
    name,
    partitions: d.partitions,
    replicas: d.replicas,
    cleanup: d.cleanup,
    ...(typeof d.retention === 'number' ? { retentionMs: d.retention } : {}),
    ...(d.retention === 'infinite' ? { retentionMs: -1 } : {}),
    ...(d.minInSync !== undefined ? { minInSync: d.minInSync } : {}),
  };
}

export const StateSchema = z
  .strictObject({
    changelog: z
      .boolean()
      .default(true)
      .describe(
        'Keep the state of fold, aggregate and dedupe steps in a compacted changelog topic, read back when a ' +
          'worker is given a partition (after a restart, a crash or a rebalance).',
      ),
    topic: z
      .string()
      .min(1)
      .optional()
      .describe(
        'The changelog topic (default `<group>.<source topic>.state`); created by the worker and by `topics apply` ' +
          '(compacted, as many partitions as the source).',
      ),
  })
  .prefault({})
  .describe('Where stateful steps keep their state when the topology runs on Kafka.');

export const TopologySchema = z
  .strictObject({
    apiVersion: z.literal('pipelines/v1'),
    kind: z.literal('Topology'),
    metadata: z.strictObject({
      name: z.string().regex(/^[a-z][a-z0-9-]*$/, 'expected lower-case letters, digits and dashes'),
      description: z.string().optional(),
      labels: z.record(z.string(), z.string()).optional(),
    }),
    spec: z.strictObject({
      source: SourceSchema,
      sources: z
        .record(identifier(), NamedSourceSchema)
        .default({})
        .describe(
          'Further source topics by name: a step reads one with `from: <name>`, a `join` or a `merge` with `with`.',
        ),
      tables: z.record(identifier(), TableSchema).default({}).describe('Lookup tables, loaded from compacted topics.'),
      steps: z.array(StepItem).default([]).describe('The steps, in order.'),
      sinks: z
        .array(SinkItem)
        .default([])
        .describe('Where the results go (a saga step declares the sinks of its own messages).'),
      errors: ErrorsSchema,
      topics: z.record(z.string(), TopicSchema).default({}).describe('Topics this topology owns (created by deploy).'),
      state: StateSchema,
    }),
  })
  .describe('A pipelines topology: source topics, steps, sinks.');

export type Topology = z.output<typeof TopologySchema>;
export type TopologyInput = z.input<typeof TopologySchema>;
export type SourceConfig = z.output<typeof SourceSchema>;
export type NamedSourceConfig = z.output<typeof NamedSourceSchema>;
export type TableConfig = z.output<typeof TableSchema>;
export type ErrorsConfig = z.output<typeof ErrorsSchema>;
export type StateConfig = z.output<typeof StateSchema>;
