// Which Kafka client errors are worth retrying. The client marks `retriable` only on some transactional
// errors; broker outages, timeouts and coordinator moves are transient whatever the flag says.

const TRANSIENT = new Set([
  'KafkaJSTimeout',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSConnectionError',
  'KafkaJSGroupCoordinatorNotAvailableError',
]);

/** librdkafka codes that mean "the broker was away or slow for a while", not "the data is wrong". */
const TRANSIENT_CODES = new Set([
  -192, // ERR__MSG_TIMED_OUT: not delivered within message.timeout.ms (sent again; in a transaction, aborted first)
  -195, // ERR__TRANSPORT
  -185, // ERR__TIMED_OUT
  -187, // ERR__ALL_BROKERS_DOWN
  -184, // ERR__QUEUE_FULL: the producer's queue is full while the broker is slow (what was queued is sent again)
  // ERR__PURGE_QUEUE and ERR__PURGE_INFLIGHT: a transaction's abort purged messages still queued or in flight. The
  // next try of the batch sends them again in a new transaction (seen after a broker restart, on the try that
  // follows a timed-out one).
  -152,
  -151,
  14, // COORDINATOR_LOAD_IN_PROGRESS
  15, // COORDINATOR_NOT_AVAILABLE
  16, // NOT_COORDINATOR (the coordinator moved, e.g. a broker restarted)
]);

export function isTransientKafkaError(err: unknown): boolean {
  const e = err as { name?: string; retriable?: boolean; abortable?: boolean; fatal?: boolean; code?: number };
  if (!e || e.fatal) return false;
  if (e.retriable || e.abortable) return true;
  if (e.code !== undefined && TRANSIENT_CODES.has(e.code)) return true;
  return TRANSIENT.has(e.name ?? '');
}

/** An error of the Kafka client (librdkafka's, with a numeric code and an origin, or its KafkaJS layer's). */
export function isKafkaClientError(err: unknown): boolean {
  const e = err as { name?: unknown; code?: unknown; origin?: unknown };
  if (!e || typeof e !== 'object') return false;
  if (typeof e.code === 'number' && (e.origin === 'local' || e.origin === 'kafka')) return true;
  return typeof e.name === 'string' && e.name.startsWith('KafkaJS');
}

/** The producer's epoch is stale: ERR__FENCED, PRODUCER_FENCED, INVALID_PRODUCER_EPOCH. */
const FENCED_CODES = new Set([-144, 90, 47]);

export function isFencedError(err: unknown): boolean {
  const e = err as { code?: number; message?: string };
  return (e.code !== undefined && FENCED_CODES.has(e.code)) || /fenced by a newer instance/i.test(e.message ?? '');
}

/** The group's generation moved on (a rebalance) between fetch and commit: ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS. */
const GROUP_MOVED_CODES = new Set([22, 27]);

export function isGroupMovedError(err: unknown): boolean {
  const e = err as { code?: number; message?: string };
  if (e.code !== undefined && GROUP_MOVED_CODES.has(e.code)) return true;
  // The client's transactional calls report these by message only.
  return /generation id is not valid|rebalance in progress/i.test(e.message ?? '');
}

/**
 * The group dropped this member (UNKNOWN_MEMBER_ID), e.g. after a broker outage long enough for the coordinator to
 * expire it: its partitions are lost, and the client rejoins only once the batch in hand returns.
 */
export function isMemberLostError(err: unknown): boolean {
  const e = err as { code?: number; message?: string };
  return e.code === 25 || /unknown member/i.test(e.message ?? '');
}
