// Subject naming strategies of the Confluent serializers: which registry subject a topic's key or value lives under.
// TopicRecordName lets several event types share one topic (ordered per key) with a subject per type.

export const SUBJECT_STRATEGIES = ['TopicName', 'RecordName', 'TopicRecordName'] as const;
export type SubjectStrategy = (typeof SUBJECT_STRATEGIES)[number];
export type SubjectKind = 'key' | 'value';

export interface SubjectInput {
  topic: string;
  /** Full name of the record (namespace.Name); required by RecordName and TopicRecordName. */
  recordName?: string;
  /** Defaults to 'value'; only TopicName uses it. */
  kind?: SubjectKind;
}

/** Accepts the short names and the Java class names (io.confluent.kafka.serializers.subject.TopicNameStrategy). */
export function parseSubjectStrategy(name: string): SubjectStrategy {
  const short = name.slice(name.lastIndexOf('.') + 1).replace(/Strategy$/, '');
  const found = SUBJECT_STRATEGIES.find((s) => s === short);
  if (!found) {
    throw new TypeError(`unknown subject strategy "${name}" (expected one of ${SUBJECT_STRATEGIES.join(', ')})`);
  }
  return found;
}

export function subjectName(strategy: SubjectStrategy, input: SubjectInput): string {
  switch (strategy) {
    case 'TopicName':
      return `${requireText(input.topic, 'topic')}-${input.kind ?? 'value'}`;
    case 'RecordName':
      return requireText(input.recordName, 'recordName');
    case 'TopicRecordName':
      return `${requireText(input.topic, 'topic')}-${requireText(input.recordName, 'recordName')}`;
  }
}

/** namespace.name of a raw Avro record schema; a dotted name is already full (Avro spec). */
export function recordFullName(schema: { name?: unknown; namespace?: unknown }): string {
  const name = requireText(typeof schema.name === 'string' ? schema.name : undefined, 'schema name');
  if (name.includes('.')) return name;
  return typeof schema.namespace === 'string' && schema.namespace !== '' ? `${schema.namespace}.${name}` : name;
}

function requireText(value: string | undefined, what: string): string {
  if (value === undefined || value === '') throw new TypeError(`subject strategy needs a ${what}`);
  return value;
}
