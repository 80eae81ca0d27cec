// Which Kafka client errors are worth retrying. The client marks `retriable` only on some transactional
// errors; broker outages, timeouts and coordinator moves are transient whatever the flag says.

const TRANSIENT = new Set([
  'KafkaJSTimeout',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSConnectionError',
  'KafkaJSGroupCoordinatorNotAvailableError',
]);

export function isTransientKafkaError(err: unknown): boolean {
  const e = err as { name?: string; retriable?: boolean; abortable?: boolean; fatal?: boolean; code?: number };
  if (!e || e.fatal) return false;
  if (e.retriable || e.abortable) return true;
  return TRANSIENT.has(e.name ?? '');
}
