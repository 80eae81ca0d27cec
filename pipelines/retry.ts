// The one retry policy: exponential backoff with full jitter, for transient failures (broker, registry, sinks).
// Each failure is retried at one level only, the edge where it enters (the registry client, a sink's write, the
// worker's own calls to the consumer), so retries never nest. What is retriable is said by the error
// (`retriable`, set where the failure was classified) or, for the Kafka client's own errors, by their codes.
import { PipelinesError } from './errors.ts';
import { isTransientKafkaError } from './kafka/errors.ts';

export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
  /** Attempts in all, the first included. Undefined: until it works or it is stopped (nothing is dropped). */
  maxAttempts?: number;
}

/** The topology's default (`errors.retry`), and what tools outside a worker use. */
export const defaultRetry: RetryPolicy = { initialMs: 100, maxMs: 10_000 };

/** Delay before attempt `attempt + 1`: uniform in [initial/2, min(max, initial * 2^(attempt-1))]. */
export function backoffDelay(p: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(p.maxMs, p.initialMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.max(Math.round(p.initialMs / 2), Math.round(random() * ceiling));
}

/** Said by the error where it was classified (PipelinesError), or for the Kafka client's own errors by their codes. */
export function isRetriable(err: unknown): boolean {
  return err instanceof PipelinesError ? err.retriable : isTransientKafkaError(err);
}

export interface RetryHooks {
  /** Turns what `fn` threw into the error the policy reads and the caller sees (classification at the edge). */
  classify?(err: unknown): Error;
  /** Before each sleep (logs, metrics, pausing the source). */
  onRetry?(err: Error, attempt: number, delayMs: number): void;
  /** Stop retrying: the last error is thrown. Checked before each sleep. */
  stopped?(): boolean;
  sleep?(ms: number): Promise<void>;
  random?(): number;
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs `fn` until it succeeds, fails with an error that is not retriable, runs out of attempts, or is stopped. */
export async function retrying<T>(
  policy: RetryPolicy,
  fn: (attempt: number) => Promise<T>,
  hooks: RetryHooks = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (raw) {
      const err = hooks.classify ? hooks.classify(raw) : (raw as Error);
      const limit = policy.maxAttempts;
      if (!isRetriable(err) || hooks.stopped?.() || (limit !== undefined && attempt >= limit)) throw err;
      const delay = backoffDelay(policy, attempt, hooks.random);
      hooks.onRetry?.(err, attempt, delay);
      await (hooks.sleep ?? pause)(delay);
    }
  }
}
