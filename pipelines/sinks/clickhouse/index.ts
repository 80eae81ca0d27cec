// The ClickHouse sink's public surface: connection, DDL, batching exactly-once writer, errors, retry.

export {
  type ClickHouse,
  type ClickHouseConfig,
  clickHouseConfigFromEnv,
  DEFAULT_EMBEDDED_PATH,
  describeClickHouse,
  openClickHouse,
} from './connection.ts';
export {
  alterTableSql,
  type ColumnDiff,
  type ColumnSpec,
  createTableSql,
  DEFAULT_DEDUP_WINDOW,
  describeColumns,
  diffColumns,
  type EngineSpec,
  type EnsureTableResult,
  type ExistingColumn,
  ensureTable,
  isDestructive,
  type TableSpec,
} from './ddl.ts';
export { ClickHouseSinkError, type ClickHouseSinkErrorCode, classifyError } from './errors.ts';
export {
  type CommittedRange,
  dedupToken,
  ensureOffsetsTable,
  OFFSETS_TABLE,
  type Offset,
  readCommittedOffsets,
  recordRanges,
  type SourceRange,
} from './offsets.ts';
export { newRetryStats, type RetryOptions, type RetryStats, withRetry } from './retry.ts';
export {
  DEFAULT_FORMAT,
  type InsertFormat,
  type InsertOptions,
  insertRows,
  insertSettings,
  type Row,
  type SinkTable,
  SinkWriter,
  type SinkWriterOptions,
  type SinkWriterStats,
} from './writer.ts';
