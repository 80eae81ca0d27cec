// The `clickhouse` sink: rows for one table, with the column and engine hints the ClickHouse sink uses.
import { z } from 'zod';
import { didYouMean } from '../diagnostics.ts';
import { defineSink, sinkCommon } from './sink.ts';

const engines = ['MergeTree', 'ReplacingMergeTree', 'SummingMergeTree', 'AggregatingMergeTree'] as const;

export const clickhouse = defineSink({
  kind: 'clickhouse',
  summary: 'Rows into a ClickHouse table.',
  description:
    'Each record becomes one row: the fields named in `columns` (all fields when omitted). `columns` may give ' +
    'ClickHouse types (`{ revenue: Float64 }`), used when the table is created. `engine` hints the table: ' +
    '`orderBy`, `partitionBy`, `version` (the version column of a ReplacingMergeTree); pair partial rows of ' +
    '`aggregate` with `emit: perBatch` with SummingMergeTree or AggregatingMergeTree.',
  config: z.strictObject({
    ...sinkCommon,
    table: z
      .string()
      .regex(/^[A-Za-z_][\w.]*$/, 'expected a table name')
      .describe('Table name (optionally database.table).'),
    columns: z
      .union([z.array(z.string()), z.record(z.string(), z.string())])
      .optional()
      .describe('Columns to write: a list of field names, or field name -> ClickHouse type.'),
    engine: z
      .strictObject({
        type: z.enum(engines).default('MergeTree').describe('Table engine.'),
        orderBy: z.array(z.string()).optional().describe('ORDER BY columns (the sorting and dedup key).'),
        partitionBy: z.string().optional().describe('PARTITION BY SQL expression.'),
        version: z.string().optional().describe('Version column of a ReplacingMergeTree.'),
        ttl: z.string().optional().describe('TTL SQL expression.'),
      })
      .optional()
      .describe('Hints for creating the table.'),
  }),
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
});
