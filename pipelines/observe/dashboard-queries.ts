// Reads the dashboards and alert rules back as queries: which PromQL or ClickHouse SQL each panel, variable
// and rule runs, the metrics it names, and the query with Grafana's variables and macros substituted, so that
// tests can parse and run every one of them against a real Prometheus and a real ClickHouse.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { CATALOGUE } from './metrics.ts';

type Json = Record<string, unknown>;

export interface DashboardQuery {
  /** file:panel title:refId, or file:$variable, or file:group/alert. */
  where: string;
  kind: 'prometheus' | 'clickhouse';
  query: string;
}

export function loadDashboards(dir: string): Array<{ file: string; dashboard: Json }> {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, dashboard: JSON.parse(readFileSync(join(dir, file), 'utf8')) as Json }));
}

function panelsOf(d: Json): Json[] {
  const out: Json[] = [];
  for (const p of (d.panels as Json[] | undefined) ?? []) {
    out.push(p);
    out.push(...panelsOf(p)); // collapsed rows hold their panels
  }
  return out;
}

/** Every panel target of a dashboard. */
export function panelQueries(file: string, d: Json): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  for (const p of panelsOf(d)) {
    for (const t of (p.targets as Json[] | undefined) ?? []) {
      const ds = ((t.datasource ?? p.datasource) as { type?: string } | undefined)?.type;
      const where = `${file}: ${String(p.title)} [${String(t.refId)}]`;
      if (ds === 'prometheus') out.push({ where, kind: 'prometheus', query: String(t.expr) });
      else if (ds === 'grafana-clickhouse-datasource') out.push({ where, kind: 'clickhouse', query: String(t.rawSql) });
      else throw new Error(`${where}: unknown datasource type ${ds}`);
    }
  }
  return out;
}

export interface PromVariable {
  name: string;
  /** The metric selector of label_values(selector, label). */
  selector: string;
  label: string;
  allValue?: string;
}

/** Query variables of the `label_values(selector, label)` form (the only kind the dashboards use). */
export function promVariables(d: Json): PromVariable[] {
  const list = ((d.templating as Json | undefined)?.list as Json[] | undefined) ?? [];
  return list
    .filter((v) => v.type === 'query')
    .map((v) => {
      const q = v.query as string | { query: string };
      const text = typeof q === 'string' ? q : q.query;
      const m = /^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(text.trim());
      if (!m) throw new Error(`variable $${String(v.name)}: unsupported query ${text}`);
      const out: PromVariable = { name: String(v.name), selector: m[1]!, label: m[2]! };
      if (typeof v.allValue === 'string') out.allValue = v.allValue;
      return out;
    });
}

export interface RuleQuery extends DashboardQuery {
  name: string;
  type: 'alert' | 'record';
}

/** Every rule of every rules file in `dir` (`*.yml`). */
export function loadRules(dir: string): RuleQuery[] {
  const out: RuleQuery[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.yml'))
    .sort()) {
    const doc = parse(readFileSync(join(dir, file), 'utf8')) as {
      groups: Array<{ name: string; rules: Array<{ alert?: string; record?: string; expr: string }> }>;
    };
    for (const g of doc.groups) {
      for (const r of g.rules) {
        const name = r.alert ?? r.record ?? '?';
        out.push({
          where: `${file}: ${g.name}/${name}`,
          kind: 'prometheus',
          query: r.expr,
          name,
          type: r.alert ? 'alert' : 'record',
        });
      }
    }
  }
  return out;
}

/** Grafana's interval variables as the tests substitute them (scrape interval 5 s, a short test window). */
export const TEST_INTERVALS = { __rate_interval: '1m', __interval: '15s', __range: '5m' };

/** Replaces `$name`, `${name}` and `[[name]]` with the given values (longest names first). */
export function substituteVariables(text: string, values: Record<string, string>): string {
  let out = text;
  for (const name of Object.keys(values).sort((a, b) => b.length - a.length)) {
    const v = values[name]!;
    out = out.split(`\${${name}}`).join(v).split(`[[${name}]]`).join(v);
    out = out.replace(new RegExp(`\\$${name.replace(/[$]/g, '\\$')}(?![a-zA-Z0-9_])`, 'g'), () => v);
  }
  return out;
}

const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'inf',
  'nan',
]);

/** The metric names a PromQL expression selects (a light scan: strings, label lists and functions removed). */
export function metricNames(expr: string): string[] {
  const lv = /^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$/.exec(expr.trim());
  const text = (lv ? lv[1]! : expr)
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = new Set<string>();
  for (const m of text.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = m[0];
    const end = m.index + word.length;
    if (/^\s*\(/.test(text.slice(end))) continue; // a function name
    if (PROMQL_WORDS.has(word.toLowerCase()) || /^\d/.test(word)) continue;
    if (m.index > 0 && /[0-9.]/.test(text[m.index - 1]!)) continue; // 1e3, 5m
    names.add(word);
  }
  return [...names].sort();
}

/** Maps a series name to its catalogue entry (histogram _bucket/_sum/_count to the histogram). */
export function catalogueEntry(series: string) {
  const exact = CATALOGUE.find((m) => m.name === series);
  if (exact) return exact;
  const base = series.replace(/_(bucket|sum|count)$/, '');
  return CATALOGUE.find((m) => m.name === base && m.type === 'histogram');
}

/**
 * The grafana-clickhouse-datasource macros the dashboards use, expanded as the plugin does for a time range
 * [from, to] and an interval: $__timeFilter(col), $__fromTime, $__toTime, $__timeInterval(col), $__interval_s.
 */
export function expandClickHouseMacros(sql: string, range: { from: Date; to: Date; intervalSeconds: number }): string {
  const from = Math.floor(range.from.getTime() / 1000);
  const to = Math.floor(range.to.getTime() / 1000);
  return sql
    .replace(
      /\$__timeFilter\(([^)]+)\)/g,
      (_, col: string) => `${col.trim()} >= toDateTime(${from}) AND ${col.trim()} <= toDateTime(${to})`,
    )
    .replace(
      /\$__timeInterval\(([^)]+)\)/g,
      (_, col: string) => `toStartOfInterval(toDateTime(${col.trim()}), INTERVAL ${range.intervalSeconds} second)`,
    )
    .replace(/\$__fromTime\b/g, `toDateTime(${from})`)
    .replace(/\$__toTime\b/g, `toDateTime(${to})`)
    .replace(/\$__interval_s\b/g, String(range.intervalSeconds));
}
