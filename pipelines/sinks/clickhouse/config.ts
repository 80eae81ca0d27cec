// The clickhouse sink's config: the only declaration of its fields (the spec, the table and the reference read it).
import { z } from 'zod';
import { sinkCommon } from '../spec.ts';

const engines = ['MergeTree', 'ReplacingMergeTree', 'SummingMergeTree', 'AggregatingMergeTree'] as const;

export const clickhouseConfig = z.strictObject({
  ...sinkCommon,
  table: z
    .string()
    .regex(
      /^[A-Za-z_][\w.]*$/,
      'expected a table name: letters, digits and _ (not first), with an optional database. prefix; ' +
        'a - is not allowed (e.g. order_lifecycle)',
    )
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
});

export type ClickHouseSinkConfig = z.output<typeof clickhouseConfig>;
