// Schema Registry client (Confluent-compatible REST API, e.g. Apicurio's /apis/ccompat/v7): the few calls the codec
// needs, with retry and backoff on transient failures and typed errors. Credentials are kept out of every message.

import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { type RetryHooks, type RetryPolicy, retrying } from '../retry.ts';
import { CodecError, RegistryError } from './errors.ts';

export const COMPATIBILITY_LEVELS = [
  'NONE',
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
] as const;
export type CompatibilityLevel = (typeof COMPATIBILITY_LEVELS)[number];

/** The retries of each request (pipelines/retry.ts); a worker passes its topology's policy and its hooks. */
export interface RegistryRetry extends RetryPolicy, Pick<RetryHooks, 'stopped' | 'onRetry'> {}

/** What tools outside a worker use: a few quick attempts. */
const TOOL_RETRY: RegistryRetry = { initialMs: 100, maxMs: 5_000, maxAttempts: 6 };

export interface RegistryConfig {
  /** Base URL, e.g. http://127.0.0.1:18081/apis/ccompat/v7; user:password@ in it is taken as basic auth. */
  url: string;
  username?: string;
  password?: string;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
  retry?: RegistryRetry;
}

export interface RegistryDeps {
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export interface SchemaText {
  id: number;
  /** The schema as the registry stores it (JSON text for Avro). */
  schema: string;
  /** AVRO when the registry omits it (Confluent convention). */
  schemaType: string;
  references: readonly { name: string; subject: string; version: number }[];
}

export interface SubjectVersion {
  subject: string;
  version: number;
  id: number;
  schema: string;
}

export interface CompatibilityVerdict {
  compatible: boolean;
  /** The registry's reasons; Apicurio 3.3.3 gives none even with verbose=true. */
  messages: string[];
}

const MEDIA_TYPE = 'application/vnd.schemaregistry.v1+json';

export class RegistryClient {
  readonly url: string;
  readonly #auth: string | undefined;
  readonly #username: string | undefined;
  readonly #password: string | undefined;
  readonly #timeoutMs: number;
  readonly #retry: RegistryRetry;
  readonly #fetch: typeof fetch;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #random: () => number;
  readonly #inflight = new Map<number, Promise<SchemaText>>();
  #library: SchemaRegistry | undefined;

  constructor(config: RegistryConfig, deps: RegistryDeps = {}) {
    const parsed = new URL(config.url);
    const username = config.username ?? (parsed.username ? decodeURIComponent(parsed.username) : undefined);
    const password = config.password ?? (parsed.password ? decodeURIComponent(parsed.password) : undefined);
    parsed.username = '';
    parsed.password = '';
    this.url = parsed.toString().replace(/\/+$/, '');
    this.#username = username;
    this.#password = password;
    this.#auth =
      username === undefined ? undefined : `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}`;
    this.#timeoutMs = config.timeoutMs ?? 10_000;
    this.#retry = config.retry ?? TOOL_RETRY;
    this.#fetch = deps.fetch ?? fetch;
    this.#sleep = deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#random = deps.random ?? Math.random;
  }

  /** The same registry through @kafkajs/confluent-schema-registry (its async per-message API), for interop. */
  get library(): SchemaRegistry {
    this.#library ??= new SchemaRegistry({
      host: this.url,
      ...(this.#username === undefined ? {} : { auth: { username: this.#username, password: this.#password ?? '' } }),
    });
    return this.#library;
  }

  /** GET /schemas/ids/{id}; concurrent calls for one id share a request. 404 → RegistryError with notFound. */
  getSchemaById(id: number): Promise<SchemaText> {
    let pending = this.#inflight.get(id);
    if (!pending) {
      pending = this.#request<{ schema: string; schemaType?: string; references?: SchemaText['references'] }>(
        'GET',
        `/schemas/ids/${id}`,
      )
        .then((body) => ({
          id,
          schema: body.schema,
          schemaType: body.schemaType ?? 'AVRO',
          references: body.references ?? [],
        }))
        .finally(() => this.#inflight.delete(id));
      this.#inflight.set(id, pending);
    }
    return pending;
  }

  /** Global compatibility level (GET /config). */
  async getGlobalCompatibility(): Promise<CompatibilityLevel> {
    const body = await this.#request<{ compatibilityLevel?: string; compatibility?: string }>('GET', '/config');
    return toLevel(body.compatibilityLevel ?? body.compatibility, 'GET /config');
  }

  /**
   * Subject-level compatibility (GET /config/{subject}), undefined when the registry has none for it (404: Apicurio
   * for an unknown subject, Confluent for a subject without its own config). Apicurio answers NONE for an existing
   * subject without a rule: see compatibility.ts for how that is read.
   */
  async getSubjectCompatibility(subject: string): Promise<CompatibilityLevel | undefined> {
    try {
      const body = await this.#request<{ compatibilityLevel?: string; compatibility?: string }>(
        'GET',
        `/config/${enc(subject)}`,
      );
      return toLevel(body.compatibilityLevel ?? body.compatibility, `GET /config/${subject}`);
    } catch (error) {
      if (error instanceof RegistryError && error.notFound) return undefined;
      throw error;
    }
  }

  /** PUT /config/{subject}. On Apicurio, NONE deletes the subject's rule. */
  async setSubjectCompatibility(subject: string, level: CompatibilityLevel): Promise<void> {
    await this.#request('PUT', `/config/${enc(subject)}`, { compatibility: level });
  }

  /**
   * POST /compatibility/subjects/{subject}/versions/{version}?verbose=true (version 'all' uses the transitive
   * endpoint without a version). A subject that does not exist is compatible (Apicurio says so, Confluent 404s).
   */
  async testCompatibility(
    subject: string,
    schema: string,
    version: number | 'latest' | 'all' = 'latest',
  ): Promise<CompatibilityVerdict> {
    const path =
      version === 'all'
        ? `/compatibility/subjects/${enc(subject)}/versions?verbose=true`
        : `/compatibility/subjects/${enc(subject)}/versions/${version}?verbose=true`;
    try {
      const body = await this.#request<{ is_compatible: boolean; messages?: string[] | string }>('POST', path, {
        schema,
      });
      const messages =
        body.messages === undefined ? [] : Array.isArray(body.messages) ? body.messages : [body.messages];
      return { compatible: body.is_compatible === true, messages };
    } catch (error) {
      if (error instanceof RegistryError && error.errorCode === 40401) return { compatible: true, messages: [] };
      throw error;
    }
  }

  /** POST /subjects/{subject}/versions → the schema id. A 409 is a RegistryError with status 409. */
  async register(subject: string, schema: string): Promise<number> {
    const body = await this.#request<{ id: number }>('POST', `/subjects/${enc(subject)}/versions`, { schema });
    return body.id;
  }

  /** POST /subjects/{subject}: the version of this exact schema under the subject, undefined if not registered. */
  async lookup(subject: string, schema: string): Promise<SubjectVersion | undefined> {
    try {
      return await this.#request<SubjectVersion>('POST', `/subjects/${enc(subject)}`, { schema });
    } catch (error) {
      if (error instanceof RegistryError && error.notFound) return undefined;
      throw error;
    }
  }

  /** GET /subjects/{subject}/versions; [] when the subject does not exist. */
  async getVersions(subject: string): Promise<number[]> {
    try {
      return await this.#request<number[]>('GET', `/subjects/${enc(subject)}/versions`);
    } catch (error) {
      if (error instanceof RegistryError && error.notFound) return [];
      throw error;
    }
  }

  async getVersion(subject: string, version: number | 'latest'): Promise<SubjectVersion> {
    return this.#request<SubjectVersion>('GET', `/subjects/${enc(subject)}/versions/${version}`);
  }

  /** What logs may show: the URL and whether auth is set, never the credentials. */
  toJSON(): { url: string; auth: boolean } {
    return { url: this.url, auth: this.#auth !== undefined };
  }

  async #request<T>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<T> {
    const what = `${method} ${path}`;
    const headers: Record<string, string> = { accept: `${MEDIA_TYPE}, application/json` };
    if (body !== undefined) headers['content-type'] = MEDIA_TYPE;
    if (this.#auth) headers.authorization = this.#auth;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const once = async (): Promise<T> => {
      let response: Response;
      let text: string;
      try {
        response = await this.#fetch(this.url + path, {
          method,
          headers,
          body: payload,
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
        text = await response.text();
      } catch (cause) {
        const reason = cause instanceof Error ? cause.message : String(cause);
        throw new RegistryError('REGISTRY_UNAVAILABLE', `${what}: registry unreachable at ${this.url} (${reason})`, {
          request: what,
          cause,
        });
      }
      if (!response.ok) throw httpError(what, response.status, text);
      try {
        return (text === '' ? undefined : JSON.parse(text)) as T;
      } catch (cause) {
        throw new RegistryError('REGISTRY_REJECTED', `${what}: the registry answered with invalid JSON`, {
          request: what,
          cause,
        });
      }
    };
    let attempts = 0;
    try {
      return await retrying(
        this.#retry,
        () => {
          attempts++;
          return once();
        },
        {
          onRetry: (err, attempt, delayMs) => this.#retry.onRetry?.(err, attempt, delayMs),
          ...(this.#retry.stopped ? { stopped: this.#retry.stopped } : {}),
          sleep: this.#sleep,
          random: this.#random,
        },
      );
    } catch (err) {
      if (err instanceof RegistryError && err.retriable && attempts > 1) {
        throw new RegistryError(err.code, `${err.message}; gave up after ${attempts} attempts`, {
          request: what,
          status: err.status,
          errorCode: err.errorCode,
          cause: err,
        });
      }
      throw err;
    }
  }
}

function httpError(what: string, status: number, text: string): RegistryError {
  let message = text.slice(0, 500);
  let errorCode: number | undefined;
  try {
    const parsed = JSON.parse(text) as { message?: unknown; error_code?: unknown };
    if (typeof parsed.message === 'string') message = parsed.message;
    if (typeof parsed.error_code === 'number') errorCode = parsed.error_code;
  } catch {
    // not JSON: keep the text
  }
  const code =
    status === 401 || status === 403
      ? 'REGISTRY_UNAUTHORIZED'
      : status === 408 || status === 429 || status >= 500
        ? 'REGISTRY_UNAVAILABLE'
        : errorCode === 42201
          ? 'INVALID_SCHEMA'
          : 'REGISTRY_REJECTED';
  return new RegistryError(code, `${what}: HTTP ${status}${message ? ` ${message}` : ''}`, {
    request: what,
    status,
    errorCode,
  });
}

function toLevel(value: string | undefined, what: string): CompatibilityLevel {
  const upper = value?.toUpperCase();
  const level = COMPATIBILITY_LEVELS.find((l) => l === upper);
  if (!level) throw new CodecError('REGISTRY_REJECTED', `${what}: unknown compatibility level ${String(value)}`);
  return level;
}

function enc(subject: string): string {
  return encodeURIComponent(subject);
}
