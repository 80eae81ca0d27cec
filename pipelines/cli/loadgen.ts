// `pipelines loadgen`: a seeded, reproducible order stream (placed, paid, shipped, cancelled) and the customer and
// product snapshots, in Avro to the topics the example topologies read; optionally with the disorder of real streams
// and poison records among the events, and the read models they must give, computed from the events as written
// alone, to check any run against.
import { writeFileSync } from 'node:fs';
import { AvroCodec, RegistryClient } from '../codec/index.ts';
import { connectionsFrom } from '../kafka/connection.ts';
import { applyTopics } from '../kafka/topics.ts';
import type { DisorderCounts, DisorderShares } from '../loadgen/disorder.ts';
import { type ExpectedReadModels, expectedReadModels } from '../loadgen/expected.ts';
import { produceOrderEvents, produceOrderSnapshots } from '../loadgen/order-topics.ts';
import { customerSnapshots } from '../loadgen/orders.ts';
import { poisonRecords, withPoison } from '../loadgen/poison.ts';
import { orderEventEncoder } from '../loadgen/produce.ts';
import { loadStream } from '../loadgen/stream.ts';
import { decimalNumber, parseOptions, share, usage, usageError, wholeNumber } from './args.ts';

export const HELP = `loadgen [--orders N] [--seed N] [--skew N] [--rate events/s] [--partitions N] [--no-snapshots]
        [--duplicates SHARE] [--late SHARE] [--out-of-order SHARE] [--v2 SHARE] [--poison N]
        [--expected file.json] [--brokers host:port] [--registry url]
  Writes N order lifecycles (default 10000; about 2.85 events each, one order placed every 100 ms of event time
  from 2026-01-01) to ORDERS_TOPIC (default orders.events), keyed by order id, and the 500 customers and 50
  products to CUSTOMERS_TOPIC and PRODUCTS_TOPIC (customers.snapshot, products.snapshot). The same seed gives the
  same events. Missing topics are created (one replica: for real clusters, pipelines topics apply).
  --skew is the Zipf exponent of customer activity (default 1.0: a few customers place most orders; 0: uniform).
  --rate caps the events per second (default: as fast as the broker takes them).
  Disorder, each a share from 0 to 1 of the events (default 0), at most one kind per event:
  --duplicates sends an event again within the next 50 events (same eventId: a producer retry);
  --late holds one back until the stream is 2 to 10 minutes of event time further;
  --out-of-order swaps one with the next event, when that is less than 5 s away;
  --v2 writes that share of the OrderPlaced events with schema v2 (a channel: web, app or store).
  --poison N spreads N bad records among the events, the kinds in turn: not Avro, an unknown schema id,
  truncated Avro, an empty value, and a valid OrderPlaced under a key that is not UTF-8.
  --expected writes the read models of order-analytics and order-status computed from the events as written
  (poison records are not events: left out), with the poison count and the disorder counts.`;

export async function loadgen(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, {
    orders: { type: 'string' },
    seed: { type: 'string' },
    skew: { type: 'string' },
    rate: { type: 'string' },
    partitions: { type: 'string' },
    'no-snapshots': { type: 'boolean' },
    duplicates: { type: 'string' },
    late: { type: 'string' },
    'out-of-order': { type: 'string' },
    v2: { type: 'string' },
    poison: { type: 'string' },
    expected: { type: 'string' },
    brokers: { type: 'string' },
    registry: { type: 'string' },
  });
  if (positionals.length > 0) throw usage(HELP);
  const orders = wholeNumber('orders', values.orders, 10_000);
  const seed = wholeNumber('seed', values.seed, 42, 0);
  const skew = decimalNumber('skew', values.skew, 1);
  const rate = values.rate === undefined ? undefined : wholeNumber('rate', values.rate, 0);
  const partitions = wholeNumber('partitions', values.partitions, 3);
  const shares: Required<DisorderShares> = {
    duplicate: share('duplicates', values.duplicates),
    late: share('late', values.late),
    outOfOrder: share('out-of-order', values['out-of-order']),
    v2: share('v2', values.v2),
  };
  if (shares.duplicate + shares.late + shares.outOfOrder > 1)
    throw usageError('--duplicates, --late and --out-of-order add up to more than 1 (an event gets one at most)');
  const poisonCount = wholeNumber('poison', values.poison, 0, 0);
  const env = process.env;
  const topics = {
    ORDERS_TOPIC: env.ORDERS_TOPIC || 'orders.events',
    CUSTOMERS_TOPIC: env.CUSTOMERS_TOPIC || 'customers.snapshot',
    PRODUCTS_TOPIC: env.PRODUCTS_TOPIC || 'products.snapshot',
  };
  // The events as written: seeded, so that each pass over them makes the same ones.
  const written = (counts?: DisorderCounts) => loadStream({ orders, seed, skew, shares }, counts);
  // A first pass counts them, to spread the poison records through the stream, and folds the read models.
  const planned = {} as DisorderCounts;
  let events = 0;
  const counted = function* () {
    for (const e of written(planned)) {
      events++;
      yield e;
    }
  };
  let expected: ExpectedReadModels | undefined;
  if (values.expected) expected = expectedReadModels(counted(), customerSnapshots());
  else for (const _ of written(planned)) events++;

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
  const poison =
    poisonCount > 0
      ? poisonRecords(poisonCount, { seed, encodeValid: await orderEventEncoder(codec, topics.ORDERS_TOPIC) })
      : [];
  const counts = {} as DisorderCounts;
  const started = performance.now();
  const tty = process.stdout.isTTY;
  const sent = await produceOrderEvents(conn.kafka, codec, topics, withPoison(written(counts), poison, events), [], {
    ...(rate ? { ratePerSecond: rate } : {}),
    onProgress: (n) => {
      if (tty) process.stdout.write(`\r\x1b[2K${n.toLocaleString('en')} events sent`);
    },
  });
  const seconds = (performance.now() - started) / 1000;
  if (tty) process.stdout.write('\n');
  const sentEvents = sent - poison.length;
  if (sentEvents !== events || JSON.stringify(counts) !== JSON.stringify(planned))
    throw new Error(`a bug: the second pass made other events than the first (${sentEvents}, not ${events})`);
  process.stdout.write(
    `${sentEvents} events (${orders} orders, seed ${seed}) to ${topics.ORDERS_TOPIC} in ${seconds.toFixed(1)} s ` +
      `(${Math.round(sent / seconds).toLocaleString('en')} events/s)${disorderText(counts, poison.length)}\n`,
  );
  if (values.expected) {
    const file = { orders, seed, skew, shares, events: sentEvents, poison: poison.length, disorder: counts };
    writeFileSync(values.expected, `${JSON.stringify({ ...file, readModels: expected }, null, 1)}\n`);
    process.stdout.write(`expected read models: ${values.expected}\n`);
  }
  return 0;
}

/** What the summary line adds when there is disorder or poison: "; 12 duplicates, 30 late, ...". */
function disorderText(c: DisorderCounts, poison: number): string {
  const parts = [
    c.duplicate > 0 && `${c.duplicate} duplicates`,
    c.late > 0 && `${c.late} late`,
    c.outOfOrder > 0 && `${c.outOfOrder} swapped out of order`,
    c.v2 > 0 && `${c.v2} OrderPlaced v2`,
    poison > 0 && `${poison} poison records`,
  ].filter(Boolean);
  return parts.length > 0 ? `; ${parts.join(', ')}` : '';
}
