// The Avro codec of the workers: Confluent wire format, writer types cached by schema id, resolvers cached per
// (writer id, reader), so that decode() and encode() are synchronous in the batch loop. Only prepare() (once per
// batch, for ids not seen yet) and encoder() (once at start) talk to the registry.

import { type AvroResolver, type AvroSchemaInput, type AvroType, namesOf, parseAvroSchema } from './avro-types.ts';
import { type EnsureOptions, ensureSchema, type SchemaCheck } from './compatibility.ts';
import { CodecError, RegistryError } from './errors.ts';
import type { RegistryClient } from './registry.ts';
import { HEADER_SIZE, MAGIC_BYTE, writeHeader } from './wire.ts';

/** What a writer id resolves to; one frozen object per id, so describe() allocates nothing. */
export interface WriterInfo {
  readonly schemaId: number;
  /** Full name of the writer's record (namespace.Name), undefined for a non-record writer. */
  readonly writerName: string | undefined;
  /** Full name of the reader the value is read through (the writer's own name when read with the writer). */
  readonly readerName: string | undefined;
  /** True when the value is read with the writer schema itself (no reader for it, or generic mode). */
  readonly readWithWriter: boolean;
}

interface Plan {
  readonly info: WriterInfo;
  readonly reader: AvroType;
  readonly resolver: AvroResolver | undefined;
  /** Set when every message with this id must fail (no reader, unreadable writer, not Avro). */
  readonly failure: { code: CodecError['code']; message: string; cause?: unknown } | undefined;
}

export type SchemaSource = Pick<RegistryClient, 'getSchemaById'>;

export interface AvroDecoderOptions {
  registry: SchemaSource;
  /**
   * Reader schemas of the topology, matched to writers by full record name (and the readers' aliases). With none,
   * every message is read with its writer schema (generic mode).
   */
  readers?: Iterable<AvroSchemaInput>;
  /**
   * A writer whose record name has no reader: 'error' (default) makes decode() throw NO_READER_FOR_RECORD (the
   * worker's policy decides: dead letter or skip); 'writer' reads it with the writer schema as it is.
   */
  unknownRecord?: 'error' | 'writer';
  /** How long an id the registry does not know is remembered before prepare() asks again (default 60 s). */
  unknownIdRetryMs?: number;
  now?: () => number;
}

export class AvroDecoder {
  readonly #registry: SchemaSource;
  readonly #readers = new Map<string, AvroType>();
  readonly #unknownRecord: 'error' | 'writer';
  readonly #unknownIdRetryMs: number;
  readonly #now: () => number;
  readonly #plans = new Map<number, Plan>();
  /** Ids the registry answered 404 for, with when. */
  readonly #unknownIds = new Map<number, number>();

  constructor(options: AvroDecoderOptions) {
    this.#registry = options.registry;
    this.#unknownRecord = options.unknownRecord ?? 'error';
    this.#unknownIdRetryMs = options.unknownIdRetryMs ?? 60_000;
    this.#now = options.now ?? Date.now;
    for (const input of options.readers ?? []) {
      const reader = parseAvroSchema(input, 'reader schema');
      const names = namesOf(reader);
      if (names.length === 0) throw new CodecError('INVALID_SCHEMA', 'a reader schema must be a named type (record)');
      for (const name of names) {
        const previous = this.#readers.get(name);
        if (previous && previous !== reader) {
          throw new CodecError('INVALID_SCHEMA', `two reader schemas claim the record name ${name}`);
        }
        this.#readers.set(name, reader);
      }
    }
  }

  /** Record names the readers answer to (full names and aliases). */
  get readerNames(): string[] {
    return [...this.#readers.keys()];
  }

  /**
   * Once per batch, before decoding it: fetches the writer schemas of ids not seen yet and builds their resolvers.
   * Messages without a valid header are ignored here (decode() reports them). Throws only retriable registry errors
   * (the batch should be retried); ids the registry does not know make decode() throw UNKNOWN_SCHEMA_ID.
   */
  async prepare(buffers: Iterable<Buffer | null | undefined>): Promise<void> {
    let missing: Set<number> | undefined;
    const now = this.#now();
    for (const buffer of buffers) {
      if (!buffer || buffer.length < HEADER_SIZE || buffer[0] !== MAGIC_BYTE) continue;
      const id = buffer.readInt32BE(1);
      if (this.#plans.has(id)) continue;
      const unknownSince = this.#unknownIds.get(id);
      if (unknownSince !== undefined && now - unknownSince < this.#unknownIdRetryMs) continue;
      missing ??= new Set();
      missing.add(id);
    }
    if (missing) await Promise.all([...missing].map((id) => this.#load(id, now)));
  }

  /** Fetches the given ids now (e.g. every version of the input subjects at start) and reports how each reads. */
  async preload(schemaIds: Iterable<number>): Promise<Array<WriterInfo & { error?: CodecError }>> {
    const now = this.#now();
    const ids = [...new Set(schemaIds)];
    await Promise.all(ids.filter((id) => !this.#plans.has(id)).map((id) => this.#load(id, now)));
    return ids.map((id) => {
      const plan = this.#plans.get(id);
      if (!plan) {
        return {
          schemaId: id,
          writerName: undefined,
          readerName: undefined,
          readWithWriter: false,
          error: this.#missing(id),
        };
      }
      return plan.failure ? { ...plan.info, error: failureError(plan) } : plan.info;
    });
  }

  /**
   * Synchronous decode of one framed message through its reader. Throws a non-retriable CodecError for a missing
   * header, an unknown magic byte, an unknown or unprepared id, a writer without reader, or undecodable bytes.
   */
  decode(buffer: Buffer): unknown {
    if (buffer.length < HEADER_SIZE) {
      throw new CodecError('TRUNCATED_MESSAGE', `message of ${buffer.length} bytes has no wire-format header`);
    }
    if (buffer[0] !== MAGIC_BYTE) {
      throw new CodecError('UNKNOWN_MAGIC_BYTE', `message starts with magic byte ${buffer[0]}, expected ${MAGIC_BYTE}`);
    }
    const id = buffer.readInt32BE(1);
    const plan = this.#plans.get(id);
    if (plan === undefined) throw this.#missing(id);
    if (plan.failure !== undefined) throw failureError(plan);
    let result: { value: unknown; offset: number };
    try {
      result = plan.reader.decode(buffer, HEADER_SIZE, plan.resolver);
    } catch (cause) {
      throw undecodable(id, (cause as Error).message, cause);
    }
    if (result.offset !== buffer.length) {
      throw undecodable(
        id,
        result.offset < 0 ? 'truncated payload' : `${buffer.length - result.offset} trailing bytes`,
      );
    }
    return result.value;
  }

  /** Which writer and reader a prepared message maps to (sync, allocation-free); throws like decode() does. */
  describe(buffer: Buffer): WriterInfo {
    if (buffer.length < HEADER_SIZE || buffer[0] !== MAGIC_BYTE) {
      throw new CodecError('UNKNOWN_MAGIC_BYTE', 'message is not in Confluent wire format');
    }
    const id = buffer.readInt32BE(1);
    const plan = this.#plans.get(id);
    if (plan === undefined) throw this.#missing(id);
    return plan.info;
  }

  async #load(id: number, now: number): Promise<void> {
    let text: Awaited<ReturnType<SchemaSource['getSchemaById']>>;
    try {
      text = await this.#registry.getSchemaById(id);
    } catch (error) {
      if (error instanceof RegistryError && error.notFound) {
        this.#unknownIds.set(id, now);
        return;
      }
      throw error;
    }
    this.#unknownIds.delete(id);
    this.#plans.set(id, this.#plan(id, text.schema, text.schemaType, text.references.length));
  }

  #plan(id: number, schema: string, schemaType: string, references: number): Plan {
    const fail = (code: CodecError['code'], message: string, cause?: unknown, writerName?: string): Plan => ({
      info: Object.freeze({ schemaId: id, writerName, readerName: undefined, readWithWriter: false }),
      reader: undefined as unknown as AvroType,
      resolver: undefined,
      failure: { code, message, cause },
    });
    if (schemaType.toUpperCase() !== 'AVRO') {
      return fail('UNSUPPORTED_SCHEMA', `schema ${id} is ${schemaType}, not AVRO`);
    }
    if (references > 0) {
      return fail('UNSUPPORTED_SCHEMA', `schema ${id} uses schema references, which the codec does not resolve`);
    }
    let writer: AvroType;
    try {
      writer = parseAvroSchema(schema, `writer schema ${id}`);
    } catch (error) {
      return fail('UNSUPPORTED_SCHEMA', (error as Error).message, error);
    }
    const writerName = writer.name;
    const reader = writerName === undefined ? undefined : this.#readers.get(writerName);
    if (reader === undefined) {
      if (this.#readers.size > 0 && this.#unknownRecord === 'error') {
        const readers = [...new Set([...this.#readers.values()].map((r) => r.name))].join(', ');
        return fail(
          'NO_READER_FOR_RECORD',
          `schema ${id} writes ${writerName ?? writer.typeName}, which has no reader (readers: ${readers})`,
          undefined,
          writerName,
        );
      }
      return {
        info: Object.freeze({ schemaId: id, writerName, readerName: writerName, readWithWriter: true }),
        reader: writer,
        resolver: undefined,
        failure: undefined,
      };
    }
    let resolver: AvroResolver | undefined;
    // Equal canonical forms read the same bytes the same way (no logical types are registered): skip the resolver.
    if (!reader.equals(writer)) {
      try {
        resolver = reader.createResolver(writer);
      } catch (cause) {
        return fail(
          'WRITER_NOT_READABLE',
          `schema ${id} (${writerName}) cannot be read through the reader ${reader.name}: ${(cause as Error).message}`,
          cause,
          writerName,
        );
      }
    }
    return {
      info: Object.freeze({ schemaId: id, writerName, readerName: reader.name, readWithWriter: false }),
      reader,
      resolver,
      failure: undefined,
    };
  }

  #missing(id: number): CodecError {
    return this.#unknownIds.has(id)
      ? new CodecError('UNKNOWN_SCHEMA_ID', `schema id ${id} is not in the registry`, { schemaId: id })
      : new CodecError('SCHEMA_NOT_PREPARED', `schema id ${id} was not prepared: call prepare() on the batch first`, {
          schemaId: id,
        });
  }
}

function failureError(plan: Plan): CodecError {
  const failure = plan.failure!;
  return new CodecError(failure.code, failure.message, { cause: failure.cause, schemaId: plan.info.schemaId });
}

function undecodable(id: number, reason: string, cause?: unknown): CodecError {
  return new CodecError('UNDECODABLE', `payload does not decode with schema ${id}: ${reason}`, { cause, schemaId: id });
}

/** Encodes values of one output schema, already registered (or checked) under its subject. */
export class AvroEncoder {
  readonly subject: string;
  readonly schemaId: number;
  readonly type: AvroType;
  /** What the start-up check found (mode, whether it registered). */
  readonly check: SchemaCheck;
  #scratch: Buffer;

  constructor(check: SchemaCheck, type: AvroType, initialBufferSize = 1024) {
    this.subject = check.subject;
    this.schemaId = check.schemaId;
    this.type = type;
    this.check = check;
    this.#scratch = Buffer.allocUnsafe(Math.max(initialBufferSize, 64));
    writeHeader(this.#scratch, check.schemaId);
  }

  /** Synchronous: one framed message; throws INVALID_VALUE (non-retriable, with the invalid paths) on a bad value. */
  encode(value: unknown): Buffer {
    let end: number;
    try {
      end = this.type.encode(value, this.#scratch, HEADER_SIZE);
      while (end < 0) {
        // avsc returns minus the missing byte count when the buffer is too small: grow and write again.
        this.#grow(this.#scratch.length - end);
        end = this.type.encode(value, this.#scratch, HEADER_SIZE);
      }
    } catch (cause) {
      throw this.#invalid(value, cause);
    }
    const out = Buffer.allocUnsafe(end);
    this.#scratch.copy(out, 0, 0, end);
    return out;
  }

  #grow(atLeast: number): void {
    let size = this.#scratch.length * 2;
    while (size < atLeast) size *= 2;
    const next = Buffer.allocUnsafe(size);
    writeHeader(next, this.schemaId);
    this.#scratch = next;
  }

  #invalid(value: unknown, cause: unknown): CodecError {
    const paths: string[] = [];
    this.type.isValid(value, {
      errorHook: (path, actual, type) => {
        if (paths.length < 10)
          paths.push(`${path.join('.') || '(root)'}: expected ${type.typeName}, got ${show(actual)}`);
      },
    });
    const detail = paths.length > 0 ? paths.join('; ') : (cause as Error).message;
    return new CodecError(
      'INVALID_VALUE',
      `value does not match ${this.type.name ?? 'schema'} (${this.subject}): ${detail}`,
      {
        cause,
        subject: this.subject,
        schemaId: this.schemaId,
      },
    );
  }
}

function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value instanceof Date) return 'a Date (timestamps are numbers: epoch ms)';
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

export interface AvroCodecOptions extends Omit<AvroDecoderOptions, 'registry'> {
  registry: RegistryClient;
}

/** The worker's entry point: one decoder for the inputs, encoders for the outputs, one registry client. */
export class AvroCodec {
  readonly registry: RegistryClient;
  readonly decoder: AvroDecoder;

  constructor(options: AvroCodecOptions) {
    this.registry = options.registry;
    this.decoder = new AvroDecoder(options);
  }

  prepare(buffers: Iterable<Buffer | null | undefined>): Promise<void> {
    return this.decoder.prepare(buffers);
  }

  decode(buffer: Buffer): unknown {
    return this.decoder.decode(buffer);
  }

  describe(buffer: Buffer): WriterInfo {
    return this.decoder.describe(buffer);
  }

  /**
   * At start, per output subject: registers the schema, or finds it registered, after checking it against the
   * subject's compatibility mode. Throws IncompatibleSchemaError (subject, mode, reasons) when it does not pass.
   */
  async encoder(subject: string, schema: string | object, options: EnsureOptions = {}): Promise<AvroEncoder> {
    const check = await ensureSchema(this.registry, subject, schema, options);
    return new AvroEncoder(check, parseAvroSchema(schema, `schema for ${subject}`));
  }

  /**
   * At start, per input subject: every registered version must read through its reader. Returns one entry per
   * version; entries with `error` would fail at decode time.
   */
  async preloadSubject(subject: string): Promise<Array<WriterInfo & { version: number; error?: CodecError }>> {
    const versions = await this.registry.getVersions(subject);
    const found = await Promise.all(versions.map((v) => this.registry.getVersion(subject, v)));
    const infos = new Map((await this.decoder.preload(found.map((f) => f.id))).map((i) => [i.schemaId, i]));
    return found.map((f) => ({ ...infos.get(f.id)!, version: f.version }));
  }
}
