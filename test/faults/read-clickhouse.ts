// Prints the order-analytics read models of an embedded ClickHouse directory as JSON, in the load generator's
// expected shape. A child process: the embedded engine opens one directory per process, and a fault run reads one
// directory per phase.
//   node test/faults/read-clickhouse.ts <dir>
import { openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import { QUERIES, rowsAsExpected } from '../integration/read-models.ts';
import { ANALYTICS_MODELS } from './compare.ts';

const ch = openClickHouse({ kind: 'embedded', path: process.argv[2]! });
const out: Record<string, unknown> = {};
for (const model of ANALYTICS_MODELS) out[model] = await rowsAsExpected(ch, QUERIES[model]);
await ch.close();
process.stdout.write(JSON.stringify(out));
