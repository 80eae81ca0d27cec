// Retry with exponential backoff and full jitter, for transient failures (broker, registry, sinks).
// What is retriable is said by the error (`retriable`, set where the failure was classified) or, for the Kafka
// client's own errors, by their codes (kafka/errors.ts); never guessed from a message here.
import { isTransientKafkaError } from '../kafka/errors.ts';

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

export function isRetriable(err: unknown): boolean {
  return (err as { retriable?: boolean })?.retriable === true || isTransientKafkaError(err);
}

export interface RetryHooks {
  /** Stop retrying: the last error is thrown. */
  stopped(): boolean;
  /** Before each sleep (logs, metrics). */
  onRetry(what: string, attempt: number, err: Error): void;
}

/** Runs `fn` until it succeeds, fails with an error that is not retriable, the policy's limit, or a stop. */
export async function retrying<T>(
  policy: RetryPolicy,
  hooks: RetryHooks,
  what: string,
  fn: () => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const e = err as Error;
      const limit = policy.maxAttempts;
      if (!isRetriable(e) || hooks.stopped() || (limit !== undefined && attempt >= limit)) throw e;
      hooks.onRetry(what, attempt, e);
      await new Promise((r) => setTimeout(r, backoffDelay(policy, attempt)));
    }
  }
}
