// How a worker reaches Kafka and the Schema Registry: from the environment, overridden by CLI flags.
// Secrets are kept out of anything printable: `describeConnection` masks them.

import { KafkaJS } from '@confluentinc/kafka-javascript';
import { existingPath, hostPortList, httpUrl, oneOf, settingError } from '../settings.ts';

export interface KafkaConnection {
  brokers: string[];
  clientId: string;
  /** librdkafka properties for security (security.protocol, sasl.*, ssl.*). */
  security: Record<string, string>;
}

export interface RegistryConnection {
  url: string;
  username?: string;
  password?: string;
}

export interface Connections {
  kafka: KafkaConnection;
  registry: RegistryConnection;
}

export interface ConnectionFlags {
  brokers?: string;
  registry?: string;
  clientId?: string;
}

const SECRET = /password|secret|token|key\.password|sasl\.jaas/i;

const PROTOCOLS = ['plaintext', 'ssl', 'sasl_plaintext', 'sasl_ssl'] as const;
const MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;
/** The TLS files: each must exist (librdkafka's `probe` looks for the system's CA certificates). */
const FILES: Array<[string, string, string]> = [
  ['PIPELINES_KAFKA_SSL_CA_LOCATION', 'ssl.ca.location', 'the CA certificate (PEM), or probe'],
  ['PIPELINES_KAFKA_SSL_CERT_LOCATION', 'ssl.certificate.location', "the client's certificate (PEM)"],
  ['PIPELINES_KAFKA_SSL_KEY_LOCATION', 'ssl.key.location', "the client's private key (PEM)"],
];

/** Reads PIPELINES_* variables, each checked (settings.ts); flags win over the environment. */
export function connectionsFrom(env: NodeJS.ProcessEnv, flags: ConnectionFlags = {}): Connections {
  const brokers = hostPortList(
    flags.brokers !== undefined ? '--brokers' : 'PIPELINES_BROKERS',
    flags.brokers ?? env.PIPELINES_BROKERS ?? '127.0.0.1:19092',
  );
  const security: Record<string, string> = {};
  const protocol = env.PIPELINES_KAFKA_SECURITY_PROTOCOL
    ? oneOf('PIPELINES_KAFKA_SECURITY_PROTOCOL', env.PIPELINES_KAFKA_SECURITY_PROTOCOL, PROTOCOLS)
    : undefined;
  if (protocol) security['security.protocol'] = protocol;
  if (env.PIPELINES_KAFKA_SASL_MECHANISM)
    security['sasl.mechanisms'] = oneOf(
      'PIPELINES_KAFKA_SASL_MECHANISM',
      env.PIPELINES_KAFKA_SASL_MECHANISM,
      MECHANISMS,
    );
  if (env.PIPELINES_KAFKA_SASL_USERNAME) security['sasl.username'] = env.PIPELINES_KAFKA_SASL_USERNAME;
  if (env.PIPELINES_KAFKA_SASL_PASSWORD) security['sasl.password'] = env.PIPELINES_KAFKA_SASL_PASSWORD;
  for (const [variable, property, what] of FILES) {
    const value = env[variable];
    if (value)
      security[property] =
        value === 'probe' && property === 'ssl.ca.location' ? value : existingPath(variable, value, what);
  }
  if (env.PIPELINES_KAFKA_SSL_KEY_PASSWORD) security['ssl.key.password'] = env.PIPELINES_KAFKA_SSL_KEY_PASSWORD;
  if (protocol?.startsWith('sasl') && !security['sasl.mechanisms']) {
    throw settingError(
      'PIPELINES_KAFKA_SASL_MECHANISM',
      `unset, and PIPELINES_KAFKA_SECURITY_PROTOCOL is ${protocol}`,
      MECHANISMS.join(', ').replace(/, (?=[^,]*$)/, ' or '),
    );
  }
  const url = httpUrl(
    flags.registry !== undefined ? '--registry' : 'PIPELINES_REGISTRY_URL',
    flags.registry ?? env.PIPELINES_REGISTRY_URL ?? 'http://127.0.0.1:18081/apis/ccompat/v7',
    'http://127.0.0.1:18081/apis/ccompat/v7',
  );
  const registry: RegistryConnection = { url };
  if (env.PIPELINES_REGISTRY_USERNAME) registry.username = env.PIPELINES_REGISTRY_USERNAME;
  if (env.PIPELINES_REGISTRY_PASSWORD) registry.password = env.PIPELINES_REGISTRY_PASSWORD;
  return {
    kafka: { brokers, clientId: flags.clientId ?? env.PIPELINES_CLIENT_ID ?? 'order-pipelines', security },
    registry,
  };
}

/** A printable view: every secret replaced by '***', credentials in URLs removed. */
export function describeConnection(c: Connections): Record<string, unknown> {
  const security = Object.fromEntries(
    Object.entries(c.kafka.security).map(([k, v]) => [k, SECRET.test(k) ? '***' : v]),
  );
  const url = new URL(c.registry.url);
  url.username = '';
  url.password = '';
  return {
    brokers: c.kafka.brokers,
    clientId: c.kafka.clientId,
    security,
    registry: {
      url: url.toString(),
      ...(c.registry.username ? { username: c.registry.username } : {}),
      ...(c.registry.password ? { password: '***' } : {}),
    },
  };
}

/** The common part of every producer, consumer and admin configuration. */
export function clientConfig(k: KafkaConnection): Record<string, unknown> {
  return { 'bootstrap.servers': k.brokers.join(','), 'client.id': k.clientId, ...k.security };
}

/** Where the client's own log lines go: the worker's log (structurally, so this room needs no logger of its own). */
export interface ClientLog {
  warn(o: object, msg: string): void;
}

/**
 * A client of the KafkaJS layer on `conn`. Its own logger prints objects to the console, which breaks a worker's
 * JSON lines: given `log`, the layer's warnings and errors (librdkafka's connection failures among them) become
 * warnings there, since every one of them is retried by the client. Without one, only errors, as the layer prints.
 */
export function kafkaOf(conn: KafkaConnection, log?: ClientLog): KafkaJS.Kafka {
  const line = (message: string, extra?: { name?: string; fac?: string }) =>
    log?.warn({ client: extra?.name, fac: extra?.fac, err: message }, 'kafka client');
  const logger = log && { setLogLevel() {}, namespace: () => logger, error: line, warn: line, info() {}, debug() {} };
  return new KafkaJS.Kafka({
    ...clientConfig(conn),
    kafkaJS: { logLevel: logger ? KafkaJS.logLevel.WARN : KafkaJS.logLevel.ERROR, ...(logger ? { logger } : {}) },
  } as never);
}
