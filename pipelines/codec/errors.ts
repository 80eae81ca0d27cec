// Typed errors of the codec, one catalogue: each code says whether retrying can help (kafkajs style).
// The worker reads `retriable`: a retriable error retries the batch, any other one goes to the record's policy.

import { PipelinesError } from '../errors.ts';

export const CODEC_ERRORS = {
  REGISTRY_UNAVAILABLE: { retriable: true, description: 'the registry did not answer (network, timeout, 5xx, 429)' },
  REGISTRY_REJECTED: { retriable: false, description: 'the registry refused the request (4xx other than not found)' },
  REGISTRY_UNAUTHORIZED: { retriable: false, description: 'the registry refused the credentials (401/403)' },
  INVALID_SCHEMA: { retriable: false, description: 'a schema could not be parsed (locally or by the registry)' },
  INCOMPATIBLE_SCHEMA: { retriable: false, description: "an output schema breaks the subject's compatibility mode" },
  SCHEMA_NOT_REGISTERED: {
    retriable: false,
    description: 'an output schema is not registered and auto-registration is off',
  },
  TRUNCATED_MESSAGE: { retriable: false, description: 'fewer than 5 bytes: no Confluent wire-format header' },
  UNKNOWN_MAGIC_BYTE: { retriable: false, description: 'the first byte is not 0 (not Confluent wire format)' },
  UNKNOWN_SCHEMA_ID: { retriable: false, description: 'the schema id is not in the registry' },
  SCHEMA_NOT_PREPARED: {
    retriable: false,
    description: 'decode() saw a schema id that prepare() was not given (a bug)',
  },
  UNSUPPORTED_SCHEMA: { retriable: false, description: 'the writer schema is not Avro, or uses references' },
  NO_READER_FOR_RECORD: {
    retriable: false,
    description: "the writer's record name has no reader schema in the topology",
  },
  WRITER_NOT_READABLE: { retriable: false, description: 'the writer schema cannot be resolved into the reader schema' },
  UNDECODABLE: { retriable: false, description: 'the Avro payload does not decode with its writer schema' },
  INVALID_VALUE: { retriable: false, description: 'a value does not match the schema it is encoded with' },
} as const;

export type CodecErrorCode = keyof typeof CODEC_ERRORS;

export interface CodecErrorOptions {
  cause?: unknown;
  /** Schema id the error is about, when there is one (decode side). */
  schemaId?: number;
  subject?: string;
}

export class CodecError extends PipelinesError {
  declare readonly code: CodecErrorCode;
  readonly schemaId: number | undefined;
  readonly subject: string | undefined;

  constructor(code: CodecErrorCode, message: string, options: CodecErrorOptions = {}) {
    super(code, message, { retriable: CODEC_ERRORS[code].retriable, cause: options.cause });
    this.name = 'CodecError';
    this.schemaId = options.schemaId;
    this.subject = options.subject;
  }
}

/** An HTTP exchange with the registry that failed; `status` is absent when no answer came at all. */
export class RegistryError extends CodecError {
  readonly status: number | undefined;
  /** The registry's own `error_code` (40401 subject not found, 40403 schema not found, 409, 422xx...). */
  readonly errorCode: number | undefined;
  /** "GET /schemas/ids/7": method and path, never credentials. */
  readonly request: string;

  constructor(
    code: CodecErrorCode,
    message: string,
    details: { status?: number; errorCode?: number; request: string } & CodecErrorOptions,
  ) {
    super(code, message, details);
    this.name = 'RegistryError';
    this.status = details.status;
    this.errorCode = details.errorCode;
    this.request = details.request;
  }

  /** True for the registry's "not found" answers (subject, version or schema). */
  get notFound(): boolean {
    return this.status === 404;
  }
}

/** An output schema rejected at start: names the subject, the mode and what is incompatible. */
export class IncompatibleSchemaError extends CodecError {
  readonly mode: string;
  /** Reasons, from the registry when it gives any and from a local avsc analysis. */
  readonly reasons: readonly string[];

  constructor(subject: string, mode: string, reasons: readonly string[], options: CodecErrorOptions = {}) {
    const list = reasons.length > 0 ? `:\n  - ${reasons.join('\n  - ')}` : ' (the registry gave no reason)';
    super('INCOMPATIBLE_SCHEMA', `schema for subject "${subject}" is incompatible under ${mode}${list}`, {
      ...options,
      subject,
    });
    this.name = 'IncompatibleSchemaError';
    this.mode = mode;
    this.reasons = reasons;
  }
}

export function isCodecError(error: unknown): error is CodecError {
  return error instanceof CodecError;
}
