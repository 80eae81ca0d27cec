// `pipelines demo`: the main job on embedded defaults, on the local Kafka and Schema Registry.
import { join, resolve } from 'node:path';
import { runOrderDemo } from '../demo/order-read-models.ts';
import { type Command, parseOptions, wholeNumber } from './args.ts';

export const demo: Command = {
  summary: 'generate an order stream, run the example topologies on it, print their read models',
  help: 'usage: pipelines demo [--orders N] [--seed N]\n  PIPELINES_DEMO_DIR: where the read models and logs go (default .local/demo)',
  async run(args) {
    const { values } = parseOptions(args, {
      orders: { type: 'string', default: '20000' },
      seed: { type: 'string', default: '42' },
    });
    const orders = wholeNumber('orders', values.orders, 20_000);
    const seed = wholeNumber('seed', values.seed, 42, Number.NEGATIVE_INFINITY);
    const root = resolve(import.meta.dirname, '../..');
    return runOrderDemo({
      orders,
      seed,
      root,
      dir: resolve(process.env.PIPELINES_DEMO_DIR || join(root, '.local/demo')),
      out: (text) => process.stdout.write(text),
    });
  },
};
