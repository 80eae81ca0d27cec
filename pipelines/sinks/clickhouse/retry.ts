// ClickHouse calls under the one retry policy, their errors classified where they enter.
// Counters live in a plain stats object that the metrics module can read; no metrics library here.

import { defaultRetry, type RetryHooks, type RetryPolicy, retrying } from '../../retry.ts';
import { type ClickHouseSinkError, classifyError, type ErrorContext } from './errors.ts';

export interface RetryOptions extends Pick<RetryHooks, 'random'> {
  /** The policy; default: the topology default, at most 10 attempts. `maxAttempts` undefined retries until `signal` aborts. */
  policy?: RetryPolicy;
  /** Stops retrying (the last error is thrown) when aborted; also cuts a pending sleep short. */
  signal?: AbortSignal;
  /** Called before each sleep; for logs and metrics. */
  onRetry?: (err: ClickHouseSinkError, attempt: number, delayMs: number) => void;
  /** Counters to update; share one object per sink so metrics can read it. */
  stats?: RetryStats;
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
 * The one retry policy (pipelines/retry.ts) around a ClickHouse call: errors are classified into
 * ClickHouseSinkError (with `ctx` naming the table) before the policy reads them, and counted.
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
  ctx: ErrorContext = {},
): Promise<T> {
  const stats = options.stats;
  if (stats) stats.calls++;
  let waiting = false;
  let attempts = 0;
  try {
    const result = await retrying(
      options.policy ?? { ...defaultRetry, maxAttempts: 10 },
      (attempt) => {
        attempts = attempt;
        return fn(attempt);
      },
      {
        classify: (raw) => {
          const err = classifyError(raw, ctx);
          if (stats) {
            stats.errorsByCode[err.code] = (stats.errorsByCode[err.code] ?? 0) + 1;
            stats.lastError = { code: err.code, message: err.message, at: Date.now() };
          }
          return err;
        },
        stopped: () => options.signal?.aborted === true,
        onRetry: (err, attempt, delay) => {
          if (stats) {
            stats.retries++;
            if (!waiting) stats.retrying++;
          }
          waiting = true;
          options.onRetry?.(err as ClickHouseSinkError, attempt, delay);
        },
        sleep: (ms) => (options.sleep ?? sleep)(ms, options.signal),
        ...(options.random ? { random: options.random } : {}),
      },
    );
    if (stats && attempts > 1) stats.recovered++;
    return result;
  } catch (err) {
    if (stats) stats.failures++;
    throw err;
  } finally {
    if (stats && waiting) stats.retrying--;
  }
}
