// How a worker reaches Kafka and the Schema Registry: from the environment, overridden by CLI flags.
// Secrets are kept out of anything printable: `describeConnection` masks them.

import { PipelinesError } from '../errors.ts';

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

export class ConfigError extends PipelinesError {
  constructor(message: string) {
    super('CONFIG', message);
    this.name = 'ConfigError';
  }
}

/** Reads PIPELINES_* variables; flags win over the environment. */
export function connectionsFrom(env: NodeJS.ProcessEnv, flags: ConnectionFlags = {}): Connections {
  const brokers = (flags.brokers ?? env.PIPELINES_BROKERS ?? '127.0.0.1:19092')
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  if (brokers.length === 0)
    throw new ConfigError('no Kafka brokers: set PIPELINES_BROKERS or --brokers host:port[,host:port]');
  for (const b of brokers) {
    if (!/^[^\s:]+:\d+$/.test(b))
      throw new ConfigError(`broker '${b}' is not host:port (PIPELINES_BROKERS / --brokers)`);
  }
  const security: Record<string, string> = {};
  const protocol = env.PIPELINES_KAFKA_SECURITY_PROTOCOL?.toLowerCase();
  if (protocol) {
    if (!['plaintext', 'ssl', 'sasl_plaintext', 'sasl_ssl'].includes(protocol)) {
      throw new ConfigError(
        `PIPELINES_KAFKA_SECURITY_PROTOCOL='${protocol}' is not one of plaintext, ssl, sasl_plaintext, sasl_ssl`,
      );
    }
    security['security.protocol'] = protocol;
  }
  const mapping: Array<[string, string]> = [
    ['PIPELINES_KAFKA_SASL_MECHANISM', 'sasl.mechanisms'],
    ['PIPELINES_KAFKA_SASL_USERNAME', 'sasl.username'],
    ['PIPELINES_KAFKA_SASL_PASSWORD', 'sasl.password'],
    ['PIPELINES_KAFKA_SSL_CA_LOCATION', 'ssl.ca.location'],
    ['PIPELINES_KAFKA_SSL_CERT_LOCATION', 'ssl.certificate.location'],
    ['PIPELINES_KAFKA_SSL_KEY_LOCATION', 'ssl.key.location'],
    ['PIPELINES_KAFKA_SSL_KEY_PASSWORD', 'ssl.key.password'],
  ];
  for (const [variable, property] of mapping) {
    const value = env[variable];
    if (value) security[property] = value;
  }
  if (protocol?.startsWith('sasl') && !security['sasl.mechanisms']) {
    throw new ConfigError(`${protocol} needs PIPELINES_KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)`);
  }
  const url = flags.registry ?? env.PIPELINES_REGISTRY_URL ?? 'http://127.0.0.1:18081/apis/ccompat/v7';
  try {
    new URL(url);
  } catch {
    throw new ConfigError(`registry URL '${url}' is not a URL (PIPELINES_REGISTRY_URL / --registry)`);
  }
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
