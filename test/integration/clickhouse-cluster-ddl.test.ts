// Cluster mode (PIPELINES_CLICKHOUSE_CLUSTER): no Keeper runs here, so no replicated table is created. What is
// checked instead: every statement the sink would run on a cluster, for every example topology, is parsed by
// ClickHouse's own parser (formatQuery in the embedded engine), and says what a cluster needs.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPlan } from '../../pipelines/runtime/load.ts';
import { type ClickHouse, openClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import { alterTableSql, distributedTableSql } from '../../pipelines/sinks/clickhouse/ddl.ts';
import { planTopologyTablesOffline, topologyTables } from '../../pipelines/sinks/clickhouse/schema.ts';

jest.setTimeout(60_000);

let dir: string;
let ch: ClickHouse;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pipelines-ch-cluster-'));
  ch = openClickHouse({ kind: 'embedded', path: dir });
});
afterAll(async () => {
  await ch.close();
  rmSync(dir, { recursive: true, force: true });
});

/** ClickHouse's parser on one statement: its formatted text, or the parser's error. */
async function parse(sql: string): Promise<string> {
  const rs = await ch.client.query({
    query: 'SELECT formatQuery({sql:String}) AS q',
    query_params: { sql },
    format: 'JSONEachRow',
  });
  return (await rs.json<{ q: string }>())[0]!.q;
}

const files = readdirSync('topologies')
  .filter((f) => f.endsWith('.yaml') && !f.endsWith('.test.yaml'))
  .map((f) => join('topologies', f));

test('the parser refuses what is not ClickHouse SQL (so the checks below can fail)', async () => {
  await expect(parse('CREATE TABLE t ON CLUSTER ENGINE = x(')).rejects.toThrow(/Syntax error/);
});

test('every table of every example topology, on a cluster: replicated, ON CLUSTER, parsed by ClickHouse', async () => {
  let statements = 0;
  for (const file of files) {
    const plan = await loadPlan(file, { env: {} });
    const tables = topologyTables(plan);
    if (tables.length === 0) continue;
    for (const p of planTopologyTablesOffline(tables, { cluster: 'prod', distributed: true })) {
      for (const sql of p.statements) {
        const formatted = await parse(sql);
        expect({ file, sql: formatted }).toEqual({ file, sql: expect.stringContaining('ON CLUSTER prod') });
        if (!/ENGINE = (Distributed|Null)/.test(formatted))
          expect({ file, sql: formatted }).toEqual({
            file,
            sql: expect.stringMatching(/ENGINE = Replicated\w*MergeTree\('\/clickhouse\/tables\/\{shard\}/),
          });
        // Keeper deduplicates replicated inserts: the non-replicated window has no place here.
        expect(formatted).not.toMatch(/non_replicated_deduplication_window/);
        statements++;
      }
    }
  }
  expect(statements).toBeGreaterThan(10);
});

test('column changes and the Distributed tables on a cluster parse too', async () => {
  const spec = { table: 'order_summary' };
  const diff = {
    add: [{ name: 'note', type: 'Nullable(String)' }],
    change: [{ name: 'total_amount', from: 'Decimal(18, 2)', to: 'Decimal(38, 2)' }],
    drop: ['old'],
  };
  const alters = alterTableSql(spec, diff, true, { cluster: 'prod' });
  expect(alters).toHaveLength(3);
  for (const sql of [...alters, distributedTableSql(spec, 'prod')])
    expect(await parse(sql)).toMatch(/^(ALTER TABLE order_summary ON CLUSTER prod|CREATE TABLE IF NOT EXISTS)/);
});
