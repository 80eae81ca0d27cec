// `pipelines loadgen`: a seeded, reproducible order stream (placed, paid, shipped, cancelled) and the customer and
// product snapshots, in Avro to the topics the example topologies read; optionally the read models they must give,
// computed from the generated events alone, to check any run against.
import { writeFileSync } from 'node:fs';
import { AvroCodec, RegistryClient } from '../codec/index.ts';
import { connectionsFrom } from '../kafka/connection.ts';
import { applyTopics } from '../kafka/topics.ts';
import { expectedReadModels } from '../loadgen/expected.ts';
import { produceOrderEvents, produceOrderSnapshots } from '../loadgen/order-topics.ts';
import { customerSnapshots, orderLifecycleStream } from '../loadgen/orders.ts';
import { parseOptions, usage, wholeNumber } from './args.ts';

export const HELP = `loadgen [--orders N] [--seed N] [--rate events/s] [--partitions N] [--no-snapshots] [--expected file.json]
        [--brokers host:port] [--registry url]
  Writes N order lifecycles (default 10000; about 2.85 events each, one order placed every 100 ms of event time
  from 2026-01-01) to ORDERS_TOPIC (default orders.events), keyed by order id, and the 500 customers and 50
  products to CUSTOMERS_TOPIC and PRODUCTS_TOPIC (customers.snapshot, products.snapshot). The same seed gives the
  same events. Missing topics are created (one replica: for real clusters, pipelines topics apply).
  --rate caps the events per second (default: as fast as the broker takes them).
  --expected writes the read models of order-analytics and order-status computed from these events alone.`;

export async function loadgen(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, {
    orders: { type: 'string' },
    seed: { type: 'string' },
    rate: { type: 'string' },
    partitions: { type: 'string' },
    'no-snapshots': { type: 'boolean' },
    expected: { type: 'string' },
    brokers: { type: 'string' },
    registry: { type: 'string' },
  });
  if (positionals.length > 0) throw usage(HELP);
  const orders = wholeNumber('orders', values.orders, 10_000);
  const seed = wholeNumber('seed', values.seed, 42, 0);
  const rate = values.rate === undefined ? undefined : wholeNumber('rate', values.rate, 0);
  const partitions = wholeNumber('partitions', values.partitions, 3);
  const env = process.env;
  const topics = {
    ORDERS_TOPIC: env.ORDERS_TOPIC || 'orders.events',
    CUSTOMERS_TOPIC: env.CUSTOMERS_TOPIC || 'customers.snapshot',
    PRODUCTS_TOPIC: env.PRODUCTS_TOPIC || 'products.snapshot',
  };
  const conn = connectionsFrom(env, { brokers: values.brokers, registry: values.registry });
  const changes = await applyTopics(
    conn.kafka,
    [
      { name: topics.ORDERS_TOPIC, partitions, replicas: 1 },
      { name: topics.CUSTOMERS_TOPIC, partitions: 1, replicas: 1, cleanup: 'compact' },
      { name: topics.PRODUCTS_TOPIC, partitions: 1, replicas: 1, cleanup: 'compact' },
    ],
    { onlyCreate: true },
  );
  for (const c of changes.filter((c) => c.action === 'create'))
    process.stdout.write(`created ${c.topic}: ${c.detail}\n`);
  const codec = new AvroCodec({ registry: new RegistryClient(conn.registry) });
  if (!values['no-snapshots']) {
    await produceOrderSnapshots(conn.kafka, codec, topics);
    process.stdout.write(
      `snapshots: 500 customers to ${topics.CUSTOMERS_TOPIC}, 50 products to ${topics.PRODUCTS_TOPIC}\n`,
    );
  }
  const started = performance.now();
  const tty = process.stdout.isTTY;
  const sent = await produceOrderEvents(conn.kafka, codec, topics, orderLifecycleStream(orders, { seed }), [], {
    ...(rate ? { ratePerSecond: rate } : {}),
    onProgress: (n) => {
      if (tty) process.stdout.write(`\r\x1b[2K${n.toLocaleString('en')} events sent`);
    },
  });
  const seconds = (performance.now() - started) / 1000;
  if (tty) process.stdout.write('\n');
  process.stdout.write(
    `${sent} events (${orders} orders, seed ${seed}) to ${topics.ORDERS_TOPIC} in ${seconds.toFixed(1)} s ` +
      `(${Math.round(sent / seconds).toLocaleString('en')} events/s)\n`,
  );
  if (values.expected) {
    const expected = expectedReadModels(orderLifecycleStream(orders, { seed }), customerSnapshots());
    writeFileSync(
      values.expected,
      `${JSON.stringify({ orders, seed, events: sent, readModels: expected }, null, 1)}\n`,
    );
    process.stdout.write(`expected read models: ${values.expected}\n`);
  }
  return 0;
}
