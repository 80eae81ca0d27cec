// Kafka headers the workers read and write: W3C trace context carried from input to output, and the
// provenance of a dead letter (where it came from and why it failed).
import { randomBytes } from 'node:crypto';

export type Headers = Record<string, Buffer | string | undefined | Array<Buffer | string>>;

export const TRACEPARENT = 'traceparent';
export const TRACESTATE = 'tracestate';
const TRACEPARENT_RE = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

function headerText(value: Headers[string]): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v === undefined ? undefined : v.toString();
}

// Span and trace ids come from a pool of random bytes refilled in bulk: one random read per output
// record measured at about a tenth of the worker's time.
const POOL_SIZE = 64 * 1024;
let pool = Buffer.alloc(0);
let poolAt = 0;
function randomHex(bytes: number): string {
  if (poolAt + bytes > pool.length) {
    pool = randomBytes(POOL_SIZE);
    poolAt = 0;
  }
  const hex = pool.toString('hex', poolAt, poolAt + bytes);
  poolAt += bytes;
  return hex;
}

/**
 * The trace context for an output record: same trace id and flags as the input, a new span id for this
 * hop (the worker's processing); a fresh trace when the input has none or an invalid one.
 */
/** A W3C traceparent that starts a new trace (sampled). */
export function newTraceparent(): string {
  return `00-${randomHex(16)}-${randomHex(8)}-01`;
}

export function childTraceHeaders(input: Readonly<Headers> | undefined): Record<string, string> {
  const parent = input ? headerText(input[TRACEPARENT]) : undefined;
  const m = parent ? TRACEPARENT_RE.exec(parent) : null;
  const span = randomHex(8);
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) {
    return { [TRACEPARENT]: newTraceparent() };
  }
  const out: Record<string, string> = { [TRACEPARENT]: `00-${m[1]}-${span}-${m[3]}` };
  const state = input ? headerText(input[TRACESTATE]) : undefined;
  if (state) out[TRACESTATE] = state;
  return out;
}

export function traceIdOf(headers: Headers | undefined): string | undefined {
  const parent = headers ? headerText(headers[TRACEPARENT]) : undefined;
  return parent ? TRACEPARENT_RE.exec(parent)?.[1] : undefined;
}

/** Dead-letter provenance, written as `pipelines.dlq.*` headers. */
export interface DeadLetterProvenance {
  topic: string;
  partition: number;
  offset: string;
  /** Kafka record timestamp of the original (ms). */
  timestamp: string;
  topology: string;
  /** Step id, or a stage such as `decode` or `sink:<id>`. */
  step: string;
  errorClass: string;
  errorMessage: string;
  /** Set when the original value was too large for the dead-letter topic and was left out: why, in words. */
  valueOmitted?: string;
  /** With valueOmitted: the original value's size and SHA-256 (hex), to find it again at the source. */
  valueBytes?: number;
  valueSha256?: string;
}

const PREFIX = 'pipelines.dlq.';
const FIELDS: Array<keyof DeadLetterProvenance> = [
  'topic',
  'partition',
  'offset',
  'timestamp',
  'topology',
  'step',
  'errorClass',
  'errorMessage',
];
const OPTIONAL: Array<keyof DeadLetterProvenance> = ['valueOmitted', 'valueBytes', 'valueSha256'];
/** Long messages are cut: a header is not a log. */
const MAX_MESSAGE = 1000;

export function deadLetterHeaders(
  p: DeadLetterProvenance,
  original: Headers | undefined,
): Record<string, string | Buffer> {
  const out: Record<string, string | Buffer> = {};
  // The original headers travel along (trace context included), so a redrive restores them.
  for (const [k, v] of Object.entries(original ?? {})) {
    const text = Array.isArray(v) ? v[0] : v;
    if (text !== undefined && !k.startsWith(PREFIX)) out[k] = text;
  }
  for (const f of FIELDS) {
    const value = String(p[f]);
    out[PREFIX + f] = f === 'errorMessage' && value.length > MAX_MESSAGE ? `${value.slice(0, MAX_MESSAGE)}…` : value;
  }
  for (const f of OPTIONAL) if (p[f] !== undefined) out[PREFIX + f] = String(p[f]);
  return out;
}

/** Reads the provenance back; undefined when the record is not a dead letter of ours. */
export function readDeadLetter(headers: Headers | undefined): DeadLetterProvenance | undefined {
  if (!headers || headerText(headers[`${PREFIX}topic`]) === undefined) return undefined;
  const p = {} as Record<string, string | number>;
  for (const f of FIELDS) p[f] = headerText(headers[PREFIX + f]) ?? '';
  for (const f of OPTIONAL) {
    const v = headerText(headers[PREFIX + f]);
    if (v !== undefined) p[f] = f === 'valueBytes' ? Number(v) : v;
  }
  p.partition = Number(p.partition);
  return p as unknown as DeadLetterProvenance;
}

/** The original headers of a dead letter, without the provenance (for a redrive). */
export function originalHeaders(headers: Headers | undefined): Record<string, string | Buffer> {
  const out: Record<string, string | Buffer> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    const value = Array.isArray(v) ? v[0] : v;
    if (value !== undefined && !k.startsWith(PREFIX)) out[k] = value;
  }
  return out;
}
