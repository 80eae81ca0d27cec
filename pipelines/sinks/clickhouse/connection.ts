// Opens ClickHouse through the official client: a server URL in production, or the embedded
// engine (chdb) as the default, with its data in a git-ignored folder. The password is never logged.

import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from '@clickhouse/client';
import type { createChdbConnection } from 'chdb/connection';
import { httpUrl, oneOf, settingError, wholeSetting } from '../../settings.ts';
import {
  DEDUP_REPAIR_VARIABLE,
  type DedupRepairMode,
  type DroppedDedupRecord,
  dedupRepairModeFromEnv,
  dropUncommittedDedupRecords,
  type EngineVersion,
  engineOwner,
} from './dedup-log.ts';
import { ClickHouseSinkError } from './errors.ts';

// The embedded engine is a large native library (about 170 MB of RSS and a second of start-up once loaded):
// loaded when an embedded connection is opened, not by every worker that merely imports the sinks.
const requireHere = createRequire(import.meta.url);

/** The data directory the embedded engine of this process has open, if any. */
let embeddedOpen: string | undefined;

type ClientConnection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>;

/** Where the embedded engine keeps its data when nothing else is said (relative to the cwd). */
export const DEFAULT_EMBEDDED_PATH = '.local/chdb';

export type ClickHouseConfig =
  | {
      kind: 'server';
      url: string;
      username?: string;
      password?: string;
      database?: string;
      /** Per-request timeout; a slow insert fails as CH_TIMEOUT (retriable). Default 30 s. */
      requestTimeoutMs?: number;
      /** A cluster (one shard, its replicas): replicated tables, DDL ON CLUSTER (ddl.ts DdlTarget). */
      cluster?: string;
      /** With a cluster: a Distributed `<table>_all` beside each read model. */
      distributed?: boolean;
    }
  | {
      kind: 'embedded';
      /** Data directory; one per process (the engine binds a single directory). */
      path: string;
      /** The crash repair of the deduplication logs (dedup-log.ts); default: PIPELINES_CLICKHOUSE_DEDUP_REPAIR, else `auto`. */
      dedupRepair?: DedupRepairMode;
    };

/**
 * Reads the connection from the environment: PIPELINES_CLICKHOUSE_URL (+ _USER, _PASSWORD,
 * _DATABASE, _TIMEOUT_MS) selects a server; otherwise the embedded engine at
 * PIPELINES_CLICKHOUSE_PATH, default `.local/chdb` under `cwd`, with PIPELINES_CLICKHOUSE_DEDUP_REPAIR.
 */
export function clickHouseConfigFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): ClickHouseConfig {
  const raw = env.PIPELINES_CLICKHOUSE_URL?.trim();
  if (raw) {
    const url = httpUrl('PIPELINES_CLICKHOUSE_URL', raw, 'http://127.0.0.1:8123');
    const c: ClickHouseConfig = { kind: 'server', url };
    if (env.PIPELINES_CLICKHOUSE_USER) c.username = env.PIPELINES_CLICKHOUSE_USER;
    if (env.PIPELINES_CLICKHOUSE_PASSWORD !== undefined) c.password = env.PIPELINES_CLICKHOUSE_PASSWORD;
    if (env.PIPELINES_CLICKHOUSE_DATABASE) c.database = env.PIPELINES_CLICKHOUSE_DATABASE;
    const timeout = wholeSetting(env, 'PIPELINES_CLICKHOUSE_TIMEOUT_MS', undefined, 'milliseconds, e.g. 30000');
    if (timeout !== undefined) c.requestTimeoutMs = timeout;
    if (env.PIPELINES_CLICKHOUSE_CLUSTER?.trim()) c.cluster = env.PIPELINES_CLICKHOUSE_CLUSTER.trim();
    if (env.PIPELINES_CLICKHOUSE_DISTRIBUTED?.trim()) {
      c.distributed =
        oneOf('PIPELINES_CLICKHOUSE_DISTRIBUTED', env.PIPELINES_CLICKHOUSE_DISTRIBUTED.trim(), ['0', '1']) === '1';
      if (c.distributed && !c.cluster)
        throw settingError(
          'PIPELINES_CLICKHOUSE_DISTRIBUTED',
          'is 1 without PIPELINES_CLICKHOUSE_CLUSTER',
          'set the cluster too, or unset it',
        );
    }
    return c;
  }
  if (env.PIPELINES_CLICKHOUSE_CLUSTER?.trim()) {
    throw settingError(
      'PIPELINES_CLICKHOUSE_CLUSTER',
      'is set without PIPELINES_CLICKHOUSE_URL (the embedded engine has no cluster)',
      'PIPELINES_CLICKHOUSE_URL too (a server of the cluster), or unset PIPELINES_CLICKHOUSE_CLUSTER',
    );
  }
  const path = resolve(cwd, env.PIPELINES_CLICKHOUSE_PATH || DEFAULT_EMBEDDED_PATH);
  return env[DEDUP_REPAIR_VARIABLE]?.trim()
    ? { kind: 'embedded', path, dedupRepair: dedupRepairModeFromEnv(env) }
    : { kind: 'embedded', path };
}

/**
 * The writer's flush thresholds from the environment: PIPELINES_CLICKHOUSE_FLUSH_ROWS (default 50,000 rows over
 * all tables and partitions of a sink) and PIPELINES_CLICKHOUSE_FLUSH_MS (default 1,000 ms after the first row).
 */
export function clickHouseFlushFromEnv(env: NodeJS.ProcessEnv = process.env): {
  maxRows?: number;
  maxDelayMs?: number;
} {
  const out: { maxRows?: number; maxDelayMs?: number } = {};
  const rows = wholeSetting(env, 'PIPELINES_CLICKHOUSE_FLUSH_ROWS', undefined, 'rows, e.g. 50000');
  const ms = wholeSetting(env, 'PIPELINES_CLICKHOUSE_FLUSH_MS', undefined, 'milliseconds, e.g. 1000');
  if (rows !== undefined) out.maxRows = rows;
  if (ms !== undefined) out.maxDelayMs = ms;
  return out;
}

/** A description safe for logs: the URL without credentials, or the embedded path. */
export function describeClickHouse(config: ClickHouseConfig): string {
  if (config.kind === 'embedded') return `embedded chdb at ${config.path}`;
  try {
    const u = new URL(config.url);
    u.username = '';
    u.password = '';
    return `server ${u.toString()}${config.username ? ` as ${config.username}` : ''}`;
  } catch {
    return 'server (unparsable URL)';
  }
}

/**
 * The embedded engine this process would load, read without opening any data directory: the chdb package's
 * version and `chdb_version()` of its native library (what chdb's own durable layer checks before it starts an
 * engine). Loading the library is what opening the engine does first anyway; the call itself is a string.
 * Anything unreadable is `unknown`, which no tested engine is.
 */
export function embeddedEngineVersion(): EngineVersion {
  const pkgPath = requireHere.resolve('chdb/package.json');
  const chdb = (requireHere(pkgPath) as { version?: unknown }).version;
  let engine = 'unknown';
  try {
    // chdb's own loader (not among its package exports, hence the path): the platform package, else a local build.
    const { loadNative } = createRequire(pkgPath)('./dist/loader.js') as {
      loadNative(): { EngineVersion?: () => unknown };
    };
    const v = loadNative().EngineVersion?.();
    if (typeof v === 'string' && v.trim()) engine = v.trim();
  } catch {
    // A library that cannot load fails again, with chdb's own message, when the engine opens.
  }
  return { chdb: typeof chdb === 'string' ? chdb : 'unknown', engine };
}

/** An open ClickHouse: the official client plus what the sink needs to know about the backend. */
export interface ClickHouse {
  readonly client: ClickHouseClient;
  readonly kind: 'server' | 'embedded';
  /** For logs; never contains the password. */
  readonly description: string;
  /** Embedded: deduplication records of inserts cut short by a crash, dropped before opening (dedup-log.ts). */
  readonly droppedDedupRecords?: readonly DroppedDedupRecord[];
  /** Server: the cluster its tables are replicated on (PIPELINES_CLICKHOUSE_CLUSTER). */
  readonly cluster?: string;
  /** Server on a cluster: Distributed tables beside the read models (PIPELINES_CLICKHOUSE_DISTRIBUTED=1). */
  readonly distributed?: boolean;
  close(): Promise<void>;
}

/**
 * Opens the backend. The embedded engine binds one data directory per process: a second
 * `openClickHouse` on the same path shares it, another path fails with CH_EMBEDDED_PATH.
 */
export function openClickHouse(config: ClickHouseConfig): ClickHouse {
  const description = describeClickHouse(config);
  // The client's own logger prints every failed request with its settings; the sink reports
  // errors itself (typed, with retries), so keep the client quiet.
  const log = { level: ClickHouseLogLevel.OFF };
  if (config.kind === 'server') {
    const client = createClient({
      url: config.url,
      ...(config.username !== undefined ? { username: config.username } : {}),
      ...(config.password !== undefined ? { password: config.password } : {}),
      ...(config.database !== undefined ? { database: config.database } : {}),
      request_timeout: config.requestTimeoutMs ?? 30_000,
      log,
    });
    return {
      client,
      kind: 'server',
      description,
      ...(config.cluster ? { cluster: config.cluster } : {}),
      ...(config.distributed ? { distributed: true } : {}),
      close: () => client.close(),
    };
  }
  let connection: ReturnType<typeof createChdbConnection>;
  const owner = engineOwner(config.path);
  if (owner !== undefined) {
    throw new ClickHouseSinkError({
      code: 'CH_EMBEDDED_PATH',
      retriable: false,
      message: `embedded ClickHouse at ${config.path} is open in another process (pid ${owner}): one process per data directory; stop it, or set PIPELINES_CLICKHOUSE_PATH to another directory`,
    });
  }
  // Only before the engine has the directory open: it reads the logs once, when it opens. The repair runs on the
  // engines it was tested on; on another it refuses to guess (CH_DEDUP_UNTESTED_ENGINE) if the logs need it.
  const droppedDedupRecords =
    embeddedOpen === undefined
      ? dropUncommittedDedupRecords(
          config.path,
          embeddedEngineVersion(),
          config.dedupRepair ?? dedupRepairModeFromEnv(process.env),
        )
      : [];
  try {
    const chdb = requireHere('chdb/connection') as { createChdbConnection: typeof createChdbConnection };
    connection = chdb.createChdbConnection({ path: config.path });
    embeddedOpen = config.path;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (/only one active data directory/i.test(message)) {
      throw new ClickHouseSinkError({
        code: 'CH_EMBEDDED_PATH',
        retriable: false,
        message: `cannot open embedded ClickHouse at ${config.path}: this process already uses another data directory (chdb binds one per process)`,
        cause: err,
      });
    }
    throw err;
  }
  // chdb types its connection against @clickhouse/client-common, the client against its own
  // bundled copy of the same interface: structurally equal but for nominal details, hence the cast.
  const client = createClient({ connection: connection as unknown as ClientConnection, log });
  return { client, kind: 'embedded', description, droppedDedupRecords, close: () => client.close() };
}

/** Opens ClickHouse for the span of `f`, and closes it whatever `f` does (commands that run once and exit). */
export async function withClickHouse<T>(config: ClickHouseConfig, f: (ch: ClickHouse) => Promise<T>): Promise<T> {
  const ch = openClickHouse(config);
  try {
    return await f(ch);
  } finally {
    await ch.close();
  }
}
