// A Prometheus histogram for the hot path: children are bound to their labels once, and one call can
// observe a whole batch of values (a tight loop over numbers, no label hashing or allocation per value).
// It plugs into a prom-client Registry (which only needs `name`, `help`, `type` and `get()`).
import type { Registry } from 'prom-client';

/** One exported sample, in the shape prom-client's Registry renders. */
export interface Sample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

export interface HistogramChild {
  observe(value: number): void;
  /** Observes `f(values[i])` for every value, or the values themselves without `f`. */
  observeMany(values: ArrayLike<number>, f?: (v: number) => number): void;
}

/** A histogram kept elsewhere (a step's own, by its bounds), rendered with this metric's name at scrape time. */
export interface KeptHistogram {
  labels: Record<string, string>;
  bounds: readonly number[];
  /** Per bound, the values that fell in it (not cumulative); values above the last bound count only in `count`. */
  counts: ArrayLike<number>;
  sum: number;
  count: number;
}

interface Cell {
  labels: Record<string, string>;
  counts: Float64Array;
  sum: number;
  count: number;
}

export class FastHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly labelNames: readonly L[];
  readonly buckets: readonly number[];
  readonly #cells = new Map<string, Cell>();
  readonly #collect: (() => Iterable<KeptHistogram>) | undefined;

  constructor(o: {
    name: string;
    help: string;
    labelNames: readonly L[];
    buckets: readonly number[];
    registry: Registry;
    collect?: () => Iterable<KeptHistogram>;
  }) {
    this.#collect = o.collect;
    this.name = o.name;
    this.help = o.help;
    this.labelNames = o.labelNames;
    this.buckets = [...o.buckets].sort((a, b) => a - b);
    o.registry.registerMetric(this as never);
  }

  /** The child for one label set; keep it (binding is the only step that costs a lookup). */
  labels(labels: Record<L, string | number>): HistogramChild {
    const key = this.labelNames.map((n) => String(labels[n])).join('\u0000');
    let cell = this.#cells.get(key);
    if (!cell) {
      const named: Record<string, string> = {};
      for (const n of this.labelNames) named[n] = String(labels[n]);
      cell = { labels: named, counts: new Float64Array(this.buckets.length), sum: 0, count: 0 };
      this.#cells.set(key, cell);
    }
    const c = cell;
    const bounds = this.buckets;
    const n = bounds.length;
    const add = (v: number): void => {
      if (!Number.isFinite(v)) return;
      c.sum += v;
      c.count++;
      for (let i = 0; i < n; i++) {
        if (v <= bounds[i]!) {
          c.counts[i]!++;
          return;
        }
      }
    };
    return {
      observe: add,
      observeMany(values, f) {
        if (f) for (let i = 0; i < values.length; i++) add(f(values[i]!));
        else for (let i = 0; i < values.length; i++) add(values[i]!);
      },
    };
  }

  /** Drops one label set's series (a revoked partition, a removed sink). */
  remove(labels: Record<L, string | number>): void {
    this.#cells.delete(this.labelNames.map((n) => String(labels[n])).join('\u0000'));
  }

  reset(): void {
    this.#cells.clear();
  }

  get(): { name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: Sample[] } {
    const values: Sample[] = [];
    const render = (cell: Omit<KeptHistogram, 'bounds'>, bounds: readonly number[]) => {
      let acc = 0;
      for (let i = 0; i < bounds.length; i++) {
        acc += cell.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...cell.labels, le: bounds[i]! }, value: acc });
      }
      values.push({ metricName: `${this.name}_bucket`, labels: { ...cell.labels, le: '+Inf' }, value: cell.count });
      values.push({ metricName: `${this.name}_sum`, labels: cell.labels, value: cell.sum });
      values.push({ metricName: `${this.name}_count`, labels: cell.labels, value: cell.count });
    };
    for (const cell of this.#cells.values()) render(cell, this.buckets);
    for (const kept of this.#collect?.() ?? []) render(kept, kept.bounds);
    return { name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values };
  }
}
