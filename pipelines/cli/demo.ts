// `pipelines demo`: the main job on embedded defaults, on the local Kafka and Schema Registry.
import { join, resolve } from 'node:path';
import { runOrderDemo } from '../demo/order-read-models.ts';
import { type Command, parseOptions, usageError } from './args.ts';

export const demo: Command = {
  summary: 'generate an order stream, run the example topologies on it, print their read models',
  help: 'usage: pipelines demo [--orders N] [--seed N]\n  PIPELINES_DEMO_DIR: where the read models and logs go (default .local/demo)',
  async run(args) {
    const { values } = parseOptions(args, {
      orders: { type: 'string', default: '20000' },
      seed: { type: 'string', default: '42' },
    });
    const orders = Number(values.orders);
    const seed = Number(values.seed);
    if (!Number.isInteger(orders) || orders < 1)
      throw usageError(`--orders: a whole number above 0, not '${values.orders}'`);
    if (!Number.isInteger(seed)) throw usageError(`--seed: a whole number, not '${values.seed}'`);
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
