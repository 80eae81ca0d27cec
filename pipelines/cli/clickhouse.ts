// `pipelines clickhouse plan|apply <file>`: the DDL that brings ClickHouse to a topology's sinks (CREATE, ADD
// COLUMN; type changes and drops only with --allow-destructive; engine and key changes refused with the rebuild
// command), printed or run, on the ClickHouse of PIPELINES_CLICKHOUSE_URL or the embedded one.
// `pipelines clickhouse query <sql>`: the query side, for the embedded engine as much as for a server.
import { alignByContent, textTable } from '../observe/text-table.ts';
import { loadPlan } from '../runtime/load.ts';
import { type ClickHouse, clickHouseConfigFromEnv, withClickHouse } from '../sinks/clickhouse/connection.ts';
import { classifyError } from '../sinks/clickhouse/errors.ts';
import {
  applyTablePlan,
  planTopologyTables,
  planTopologyTablesOffline,
  type TablePlan,
  topologyTables,
} from '../sinks/clickhouse/schema.ts';
import { assertServerSupported } from '../sinks/clickhouse/version.ts';
import { type Command, parseOptions } from './args.ts';

const usage = `usage: pipelines clickhouse plan <topology.yaml> [--live] [--cluster <name> [--distributed]] [--into <suffix>] [--allow-destructive]
       pipelines clickhouse apply <topology.yaml> [--into <suffix>] [--allow-destructive]
       pipelines clickhouse query "<sql>" [--json]
  plan prints the DDL from the topology alone and opens nothing; --live compares with ClickHouse (what apply runs)
  --cluster: the DDL for a cluster (replicated engines, ON CLUSTER), default PIPELINES_CLICKHOUSE_CLUSTER;
  --distributed adds a Distributed <table>_all beside each read model (PIPELINES_CLICKHOUSE_DISTRIBUTED=1)
  --into writes the tables of a rebuild (<table>_<suffix>); PIPELINES_CLICKHOUSE_URL or _PATH chooses ClickHouse`;

function clusterOf(config: ReturnType<typeof clickHouseConfigFromEnv>): string | undefined {
  return config.kind === 'server' ? config.cluster : undefined;
}

/** The plan as SQL, one comment line per table saying what happens to it. */
export function formatPlan(plans: readonly TablePlan[]): string {
  const out: string[] = [];
  for (const p of plans) {
    const what = !p.exists
      ? 'create'
      : p.statements.length === 0 && p.refused.length === 0
        ? 'up to date'
        : `migrate (${p.diff.add.length} to add, ${p.diff.change.length} to change, ${p.diff.drop.length} to drop)`;
    out.push(`-- ${p.table}: ${what}`);
    for (const sql of p.statements) out.push(`${sql};`);
    for (const r of p.refused) out.push(`-- refused: ${r.reason}`);
    out.push('');
  }
  return out.join('\n');
}

/** A query's rows as aligned columns under their names (or JSON lines); a ClickHouse error in one line. */
export async function runQuery(ch: ClickHouse, sql: string, as: 'table' | 'json' = 'table'): Promise<string> {
  let rows: Array<Record<string, unknown>>;
  try {
    // Statements that return no rows (INSERT, CREATE, OPTIMIZE...) take no FORMAT clause.
    if (!/^\s*(select|with|show|describe|desc|explain|exists)\b/i.test(sql)) {
      await ch.client.command({ query: sql });
      return 'ok\n';
    }
    const rs = await ch.client.query({ query: sql, format: 'JSONEachRow' });
    rows = await rs.json<Record<string, unknown>>();
  } catch (err) {
    throw classifyError(err, { operation: 'query' });
  }
  if (as === 'json') return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  if (rows.length === 0) return '(no rows)\n';
  const head = Object.keys(rows[0]!);
  const cells = rows.map((r) =>
    head.map((h) => (r[h] === null ? 'NULL' : typeof r[h] === 'object' ? JSON.stringify(r[h]) : String(r[h]))),
  );
  return `${textTable(head, cells, alignByContent(cells, head.length)).join('\n')}\n(${rows.length} row${rows.length === 1 ? '' : 's'})\n`;
}

export const clickhouse: Command = {
  summary: 'plan or apply the ClickHouse tables of a topology (DDL from its sinks), or query them',
  help: usage,
  async run(args) {
    const { values, positionals } = parseOptions(args, {
      into: { type: 'string' },
      'allow-destructive': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      live: { type: 'boolean', default: false },
      cluster: { type: 'string' },
      distributed: { type: 'boolean' },
    });
    const [action, file] = positionals;
    const clickhouse = clickHouseConfigFromEnv(process.env);
    if (action === 'query' && file) {
      const text = await withClickHouse(clickhouse, (ch) => runQuery(ch, file, values.json ? 'json' : 'table'));
      process.stdout.write(text);
      return 0;
    }
    if (!file || (action !== 'plan' && action !== 'apply')) {
      process.stderr.write(`${usage}\n`);
      return 2;
    }
    const plan = await loadPlan(file, { env: process.env });
    const suffix = values.into;
    const tables = topologyTables(plan, suffix ? (t) => `${t}_${suffix}` : undefined);
    if (action === 'plan' && !values.live) {
      process.stdout.write(
        `-- ${plan.name}: the DDL from the topology alone (--live compares with ClickHouse)\n` +
          formatPlan(
            planTopologyTablesOffline(tables, {
              cluster: values.cluster ?? clusterOf(clickhouse),
              distributed: values.distributed ?? (clickhouse.kind === 'server' && clickhouse.distributed === true),
            }),
          ),
      );
      return 0;
    }
    return withClickHouse(clickhouse, async (ch) => {
      // Before any DDL is planned: an old server would reject the plan's statements with a message naming no cause.
      await assertServerSupported(ch);
      const allowDestructive = values['allow-destructive'];
      const plans = await planTopologyTables(ch, tables, { allowDestructive });
      process.stdout.write(`-- ${plan.name} on ${ch.description}\n${formatPlan(plans)}`);
      const refused = plans.filter((p) => p.refused.length > 0);
      if (action === 'plan') return refused.length > 0 ? 1 : 0;
      if (refused.length > 0) {
        process.stderr.write(`refused changes to ${refused.map((p) => p.table).join(', ')}: nothing applied\n`);
        return 1;
      }
      for (const p of plans) await applyTablePlan(ch, p);
      const ran = plans.reduce((n, p) => n + p.statements.length, 0);
      process.stdout.write(`applied ${ran} statement(s)\n`);
      return 0;
    });
  },
};
