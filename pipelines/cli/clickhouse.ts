// `pipelines clickhouse plan|apply <file>`: the DDL that brings ClickHouse to a topology's sinks (CREATE, ADD
// COLUMN; type changes and drops only with --allow-destructive; engine and key changes refused with the rebuild
// command), printed or run, on the ClickHouse of PIPELINES_CLICKHOUSE_URL or the embedded one.
import { parseArgs } from 'node:util';
import { clickHouseConfigFromEnv, openClickHouse } from '../sinks/clickhouse/connection.ts';
import { applyTablePlan, planTopologyTables, type TablePlan, topologyTables } from '../sinks/clickhouse/schema.ts';
import { loadPlan } from '../topology/load.ts';
import type { Command } from './args.ts';

const usage = `usage: pipelines clickhouse plan <topology.yaml> [--into <suffix>] [--allow-destructive]
       pipelines clickhouse apply <topology.yaml> [--into <suffix>] [--allow-destructive]
  --into writes the tables of a rebuild (<table>_<suffix>); PIPELINES_CLICKHOUSE_URL or _PATH chooses ClickHouse`;

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

export const clickhouse: Command = {
  summary: 'plan or apply the ClickHouse tables of a topology (DDL from its sinks)',
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        into: { type: 'string' },
        'allow-destructive': { type: 'boolean', default: false },
      },
    });
    const [action, file] = positionals;
    if (!file || (action !== 'plan' && action !== 'apply')) {
      process.stderr.write(`${usage}\n`);
      return 2;
    }
    const plan = await loadPlan(file, { env: process.env });
    const suffix = values.into;
    const tables = topologyTables(plan, suffix ? (t) => `${t}_${suffix}` : undefined);
    const ch = openClickHouse(clickHouseConfigFromEnv(process.env));
    try {
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
    } finally {
      await ch.close();
    }
  },
};
