// Retry with exponential backoff and full jitter, driven by the error's `retriable` flag.
// Counters live in a plain stats object that the metrics module can read; no metrics library here.

import { type ClickHouseSinkError, classifyError, type ErrorContext } from './errors.ts';

export interface RetryOptions {
  /** Attempts in all, the first included; `Infinity` retries until `signal` aborts. Default 10. */
  maxAttempts?: number;
  /** Delay before the first retry, before jitter. Default 100 ms. */
  baseDelayMs?: number;
  /** Ceiling of the delay. Default 10 s. */
  maxDelayMs?: number;
  /** Growth factor per attempt. Default 2. */
  factor?: number;
  /** Stops retrying (the last error is thrown) when aborted; also cuts a pending sleep short. */
  signal?: AbortSignal;
  /** Called before each sleep; for logs. */
  onRetry?: (err: ClickHouseSinkError, attempt: number, delayMs: number) => void;
  /** Counters to update; share one object per sink so metrics can read it. */
  stats?: RetryStats;
  /** Random source in [0, 1), injectable for tests. */
  random?: () => number;
  /** Sleep, injectable for tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Counters of a sink's ClickHouse calls, read by the metrics module. */
export interface RetryStats {
  /** Calls started (one per logical operation, not per attempt). */
  calls: number;
  /** Attempts that failed with a retriable error and were retried. */
  retries: number;
  /** Calls that finally failed (non-retriable, attempts exhausted, or stopped). */
  failures: number;
  /** Calls that succeeded after at least one retry. */
  recovered: number;
  /** Operations currently waiting to retry: > 0 means ClickHouse is down or slow. */
  retrying: number;
  /** Failures by error code. */
  errorsByCode: Record<string, number>;
  lastError: { code: string; message: string; at: number } | undefined;
}

export function newRetryStats(): RetryStats {
  return { calls: 0, retries: 0, failures: 0, recovered: 0, retrying: 0, errorsByCode: {}, lastError: undefined };
}

/** Exponential backoff with full jitter: uniform in [0, min(max, base * factor^(attempt-1))]. */
export function backoffDelay(
  attempt: number,
  o: Required<Pick<RetryOptions, 'baseDelayMs' | 'maxDelayMs' | 'factor'>>,
  random: () => number,
): number {
  const ceiling = Math.min(o.maxDelayMs, o.baseDelayMs * o.factor ** Math.max(0, attempt - 1));
  return Math.round(random() * ceiling);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `fn` until it succeeds, a non-retriable error occurs, attempts run out or `signal` aborts.
 * Errors are classified into ClickHouseSinkError (with `ctx` naming the table) before deciding.
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
  ctx: ErrorContext = {},
): Promise<T> {
  const maxAttempts = options.maxAttempts ?? 10;
  const backoff = {
    baseDelayMs: options.baseDelayMs ?? 100,
    maxDelayMs: options.maxDelayMs ?? 10_000,
    factor: options.factor ?? 2,
  };
  const random = options.random ?? Math.random;
  const pause = options.sleep ?? sleep;
  const stats = options.stats;
  if (stats) stats.calls++;
  let waiting = false;
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await fn(attempt);
        if (stats && attempt > 1) stats.recovered++;
        return result;
      } catch (raw) {
        const err = classifyError(raw, ctx);
        const stop = !err.retriable || attempt >= maxAttempts || options.signal?.aborted === true;
        if (stats) {
          stats.errorsByCode[err.code] = (stats.errorsByCode[err.code] ?? 0) + 1;
          stats.lastError = { code: err.code, message: err.message, at: Date.now() };
        }
        if (stop) {
          if (stats) stats.failures++;
          throw err;
        }
        const delay = backoffDelay(attempt, backoff, random);
        if (stats) {
          stats.retries++;
          if (!waiting) stats.retrying++;
        }
        waiting = true;
        options.onRetry?.(err, attempt, delay);
        await pause(delay, options.signal);
      }
    }
  } finally {
    if (stats && waiting) stats.retrying--;
  }
}
