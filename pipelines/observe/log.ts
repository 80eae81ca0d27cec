// Structured logs (pino, JSON lines on stderr). Level from PIPELINES_LOG_LEVEL (default info). Anything that
// looks like a secret is redacted by key, wherever it is nested, and every line is masked by value (secrets.ts).
// Written synchronously: a worker logs per batch and per event of its life, not per record, so a blocking write
// costs nothing measurable, and the last lines before a kill -9 or a fatal exit are on stderr, not in a buffer.
import pino from 'pino';
import { mask } from '../secrets.ts';
import { oneOf } from '../settings.ts';

const SECRET_KEYS = ['password', 'sasl.password', 'ssl.key.password', 'token', 'secret', 'authorization'];

export type Logger = pino.Logger;

/** pino's levels, the values PIPELINES_LOG_LEVEL takes. */
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function createLogger(name: string, env: NodeJS.ProcessEnv = process.env): Logger {
  const raw = env.PIPELINES_LOG_LEVEL;
  return pino(
    {
      name,
      level: raw?.trim() ? oneOf('PIPELINES_LOG_LEVEL', raw, LEVELS) : 'info',
      base: { pid: process.pid },
      redact: { paths: SECRET_KEYS.flatMap((k) => [`"${k}"`, `*["${k}"]`, `*.*["${k}"]`]), censor: '***' },
      timestamp: pino.stdTimeFunctions.isoTime,
      hooks: { streamWrite: mask },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}

/** The part of a logger that the runtime and the state loaders use (a pino logger is one; tests pass their own). */
export interface WorkerLog {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
  error(o: object, msg: string): void;
}
