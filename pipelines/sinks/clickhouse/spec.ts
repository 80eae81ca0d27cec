// The `clickhouse` sink: rows for one table, with the column and engine hints the ClickHouse sink uses.
import { PipelinesError } from '../../errors.ts';
import { didYouMean } from '../../topology/diagnostics.ts';
import { defineSink, type SinkContext } from '../spec.ts';
import { clickhouseConfig } from './config.ts';
import { type ClickHouse, clickHouseConfigFromEnv, clickHouseFlushFromEnv, openClickHouse } from './connection.ts';
import { instrumentClickHouse } from './instrument.ts';
import { ClickHouseSink } from './sink.ts';
import { columnMisfit, tableSpecFor } from './table.ts';
import { assertServerSupported } from './version.ts';

export const clickhouse = defineSink({
  kind: 'clickhouse',
  summary: 'Rows into a ClickHouse table.',
  description:
    'Each record becomes one row: the fields named in `columns` (all fields when omitted). `columns` may give ' +
    'ClickHouse types (`{ revenue: Float64 }`), used when the table is created; validate refuses a declared type ' +
    'that cannot hold what flows into it. Types not given come from the steps: counts UInt64, Avro int and long ' +
    'Int64, other numbers Float64, timestamp-millis fields and window bounds DateTime64(3), lists of scalars ' +
    'Array, optional values Nullable, records and untyped values JSON text in a String. `engine` hints the table: ' +
    '`orderBy`, `partitionBy`, `version` (the version column of a ReplacingMergeTree); pair partial rows of ' +
    '`aggregate` with `emit: perBatch` with SummingMergeTree or AggregatingMergeTree.',
  config: clickhouseConfig,
  examples: [
    {
      table: 'revenue_by_segment_1m',
      engine: { type: 'SummingMergeTree', orderBy: ['windowStart', 'segment'] },
    },
    {
      table: 'order_status',
      columns: { orderId: 'String', status: 'LowCardinality(String)', updatedAt: "DateTime64(3, 'UTC')" },
      engine: { type: 'ReplacingMergeTree', orderBy: ['orderId'], version: 'updatedAt' },
    },
  ],
  defaultId: (c) => `clickhouse:${c.table}`,
  describe: (c) => `table ${c.table}`,
  needs: (c, scope) => ({ tables: [tableSpecFor(c, scope)] }),
  rebuildable: true,
  checkSettings(env) {
    clickHouseConfigFromEnv(env);
    clickHouseFlushFromEnv(env);
  },
  check(c, ctx, scope) {
    const fields = Object.keys(scope);
    const cols = c.columns ? (Array.isArray(c.columns) ? c.columns : Object.keys(c.columns)) : fields;
    if (c.columns) {
      cols.forEach((col, i) => {
        if (!(col in scope)) {
          ctx.report(
            'sink-unknown-column',
            `column '${col}' is not produced by any step`,
            ['columns', Array.isArray(c.columns) ? i : col],
            didYouMean(col, fields),
          );
        }
      });
    }
    if (c.columns && !Array.isArray(c.columns)) {
      for (const [col, declared] of Object.entries(c.columns)) {
        const flows = scope[col];
        const misfit = flows && columnMisfit(declared, flows);
        if (!misfit) continue;
        const code = misfit.kind === 'type' ? 'sink-column-type' : 'lint-column-lossy';
        ctx.report(code, `column '${col}': ${misfit.message}`, ['columns', col], misfit.hint);
      }
    }
    const engine = c.engine?.type ?? 'MergeTree';
    if (ctx.rows === 'partials' && engine === 'ReplacingMergeTree') {
      ctx.report(
        'lint-rows-engine',
        'partial rows (emit: perBatch) replace each other in a ReplacingMergeTree: all but one per key are lost',
        c.engine ? ['engine', 'type'] : [],
        'use SummingMergeTree (or AggregatingMergeTree), or emit: onClose',
      );
    }
    if (ctx.rows === 'updates' && engine === 'SummingMergeTree') {
      ctx.report(
        'lint-rows-engine',
        'each row is the current value of its key (a fold, or emit: onUpdate): SummingMergeTree adds them up',
        ['engine', 'type'],
        'use ReplacingMergeTree with a version column, or emit: perBatch partials',
      );
    }
    const known = new Set(cols);
    (c.engine?.orderBy ?? []).forEach((col, i) => {
      if (!known.has(col))
        ctx.report(
          'sink-unknown-column',
          `orderBy column '${col}' is not written`,
          ['engine', 'orderBy', i],
          didYouMean(col, cols),
        );
    });
    if (c.engine?.version && !known.has(c.engine.version)) {
      ctx.report(
        'sink-unknown-column',
        `version column '${c.engine.version}' is not written`,
        ['engine', 'version'],
        didYouMean(c.engine.version, cols),
      );
    }
    if (c.engine?.version && c.engine.type !== 'ReplacingMergeTree') {
      ctx.report('schema-invalid-value', 'a version column needs engine type ReplacingMergeTree', [
        'engine',
        'version',
      ]);
    }
  },
  create(c) {
    const cols = c.columns ? (Array.isArray(c.columns) ? c.columns : Object.keys(c.columns)) : undefined;
    return {
      table: c.table,
      columns: c.columns,
      engine: c.engine,
      toOutput(vars) {
        if (!cols) return { ...vars };
        const row: Record<string, unknown> = {};
        for (const col of cols) row[col] = vars[col];
        return row;
      },
    };
  },
  async build({ id, config, scope }, ctx) {
    const ch = ctx.shared<SharedClickHouse>(
      'clickhouse',
      () => connect(ctx),
      (c) => c.close(),
    );
    await ch.supported;
    const live = tableSpecFor(config, scope);
    const table = ctx.rebuild ? { ...live, table: ctx.rebuild.table(live.table) } : live;
    ch.sinks.set(table.table, id);
    const sink = new ClickHouseSink({
      id,
      topology: ctx.topology,
      ch: ch.connection,
      table,
      ...(ctx.rebuild ? { tokenName: live.table, logSink: ctx.rebuild.logSink(id) } : {}),
      allowDestructive: ctx.allowDestructive,
      writer: {
        ...clickHouseFlushFromEnv(ctx.env),
        ...(ctx.tuning.clickhouseMaxRows ? { maxRows: ctx.tuning.clickhouseMaxRows } : {}),
      },
      retry: ctx.retry,
      ...(ch.connection.kind === 'embedded' && !ctx.rebuild && !ch.lent
        ? { firstAssignment: () => aloneInGroup(ctx) }
        : {}),
    });
    await sink.prepare();
    return sink;
  },
});

/**
 * The embedded engine is one process's: several workers of a group, each with its own data directory, would
 * split the read models between them and count twice what moves on a rebalance. Checked when this worker gets
 * its first partitions (before it writes anything); a worker that joins a running one is the one refused.
 */
async function aloneInGroup(ctx: SinkContext): Promise<void> {
  const members = await ctx.groupMembers();
  if (members > 1)
    throw new PipelinesError(
      'CH_EMBEDDED_SHARED',
      `the embedded ClickHouse holds this worker's read models alone, but its consumer group has ${members} members: ` +
        'run one worker, or point every worker at one ClickHouse server with PIPELINES_CLICKHOUSE_URL',
    );
}

/** What the ClickHouse sinks of a worker share: one connection. */
interface SharedClickHouse {
  connection: ClickHouse;
  /** Table → sink id, for the insert metrics. */
  sinks: Map<string, string>;
  supported: Promise<void>;
  close(): Promise<void>;
  /** Lent by the process to several workers (LaunchOptions.lent): they write it as clients of one server do. */
  lent?: true;
}

/** The key under which a process lends one ClickHouse to its workers: `lent: new Map([lendClickHouse(ch)])`. */
export function lendClickHouse(connection: ClickHouse): [string, SharedClickHouse] {
  return [
    'clickhouse',
    { connection, sinks: new Map(), supported: assertServerSupported(connection), close: async () => {}, lent: true },
  ];
}

/** The one connection of a worker's ClickHouse sinks (instrumented when there are metrics), and its ping. */
function connect(ctx: SinkContext): SharedClickHouse {
  const opened = openClickHouse(clickHouseConfigFromEnv(ctx.env));
  const sinks = new Map<string, string>();
  const connection = ctx.events ? instrumentClickHouse(opened, ctx.events, sinks) : opened;
  ctx.log.info({ clickhouse: opened.description }, 'ClickHouse');
  if (opened.droppedDedupRecords?.length) {
    ctx.log.warn(
      { records: opened.droppedDedupRecords },
      'ClickHouse: dropped deduplication records of inserts a crash cut short (their replay is written)',
    );
  }
  ctx.readiness(async () => {
    const ok = await connection.client.ping().then(
      (r) => r.success,
      () => false,
    );
    return ok ? [] : [`${ctx.topology}: ClickHouse (${opened.description}) does not answer`];
  });
  // Checked once per connection, before any DDL: an old server rejects it with a message that names no cause.
  const supported = assertServerSupported(opened);
  supported.catch(() => {});
  return { connection, sinks, supported, close: () => opened.close() };
}
