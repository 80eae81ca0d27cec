// Structured logs (pino, JSON lines on stderr). Level from PIPELINES_LOG_LEVEL (default info). Anything that
// looks like a secret is redacted by key, wherever it is nested.
import pino from 'pino';

const SECRET_KEYS = ['password', 'sasl.password', 'ssl.key.password', 'token', 'secret', 'authorization'];

export type Logger = pino.Logger;

export function createLogger(name: string, env: NodeJS.ProcessEnv = process.env): Logger {
  return pino(
    {
      name,
      level: env.PIPELINES_LOG_LEVEL ?? 'info',
      base: { pid: process.pid },
      redact: { paths: SECRET_KEYS.flatMap((k) => [`"${k}"`, `*["${k}"]`, `*.*["${k}"]`]), censor: '***' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ fd: 2, sync: false }),
  );
}

/** The part of a logger that the runtime and the state loaders use (a pino logger is one; tests pass their own). */
export interface WorkerLog {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
  error(o: object, msg: string): void;
}
