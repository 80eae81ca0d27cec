// Retry with exponential backoff and full jitter, for transient failures (broker, registry, sinks).
// What is retriable is said by the error (`retriable`), not guessed here.

export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
  /** Undefined: retry until it works or the worker stops (nothing is dropped). */
  maxAttempts?: number;
}

export const defaultRetry: RetryPolicy = { initialMs: 100, maxMs: 10_000 };

/** Delay before attempt `attempt + 1`: uniform in [0, min(max, initial * 2^(attempt-1))]. */
export function backoffDelay(p: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(p.maxMs, p.initialMs * 2 ** Math.min(attempt - 1, 30));
  return Math.max(p.initialMs / 2, Math.round(random() * ceiling));
}
