// The Grafana dashboards and alert rules, checked without a Grafana: the committed JSON is what
// pipelines/observe/grafana.ts generates (UPDATE_GRAFANA=1 rewrites it), and so has the structure that the
// type-checker verifies there against Grafana's schema types (@grafana/schema); every dashboard keeps the rules
// those types cannot express (identifiers, the 24-column grid, unique ids, a datasource for every panel), every
// PromQL expression parses (promtool's own parser, offline), every metric named is in the catalogue, and every
// datasource a panel names is provisioned.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import {
  catalogueEntry,
  loadDashboards,
  loadRules,
  metricNames,
  panelQueries,
  promVariables,
  substituteVariables,
  TEST_INTERVALS,
} from '../../pipelines/observe/dashboard-queries.ts';
import { CLICKHOUSE_DATASOURCE, DASHBOARDS, PROMETHEUS_DATASOURCE } from '../../pipelines/observe/grafana.ts';

const root = join(__dirname, '..', '..');
const dashboardsDir = join(root, 'grafana', 'dashboards');
const alertsDir = join(root, 'grafana', 'alerts');

if (process.env.UPDATE_GRAFANA === '1') {
  for (const [file, d] of Object.entries(DASHBOARDS)) {
    writeFileSync(join(dashboardsDir, file), `${JSON.stringify(d, null, 2)}\n`);
  }
  execFileSync('npx', ['biome', 'format', '--write', dashboardsDir], { cwd: root, stdio: 'ignore' });
}

// Structure (the fields of the dashboard, rows, panels, variables, links, queries and each panel plugin's options,
// their types and enum values) is checked by the type-checker against @grafana/schema: grafana.ts types what it
// builds with it, and the first test keeps the committed JSON equal to what it builds. Checked here at run time
// is what those types cannot express.
const datasourceRef = z.object({ type: z.string().min(1), uid: z.string().min(1) });
const gridPos = z
  .object({
    h: z.number().int().positive(),
    w: z.number().int().min(1).max(24),
    x: z.number().int().min(0).max(23),
    y: z.number().int().min(0),
  })
  .refine((g) => g.x + g.w <= 24, 'panel overflows the 24-column grid');
const panel = z.union([
  z.looseObject({ type: z.literal('row'), id: z.number().int().positive(), gridPos }),
  z.looseObject({
    type: z.string().min(1),
    id: z.number().int().positive(),
    title: z.string().min(1),
    gridPos,
    datasource: datasourceRef,
    targets: z.array(z.looseObject({ refId: z.string().min(1), datasource: datasourceRef.optional() })).min(1),
  }),
]);
const dashboardSchema = z.looseObject({
  uid: z.string().regex(/^[a-zA-Z0-9_-]{1,40}$/),
  title: z.string().min(1),
  schemaVersion: z.number().int().min(36),
  templating: z.object({ list: z.array(z.looseObject({ name: z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/) })) }),
  panels: z.array(panel).min(1),
});

const dashboards = loadDashboards(dashboardsDir);

test('the committed dashboards are the generated ones (UPDATE_GRAFANA=1 to regenerate)', () => {
  expect(dashboards.map((d) => d.file).sort()).toEqual(Object.keys(DASHBOARDS).sort());
  for (const { file, dashboard } of dashboards)
    expect({ file, dashboard }).toEqual({ file, dashboard: DASHBOARDS[file] });
});

describe.each(dashboards.map((d) => [d.file, d.dashboard] as const))('%s', (file, d) => {
  test('has identifiers Grafana accepts, panels on the grid, a datasource for every panel', () => {
    const r = dashboardSchema.safeParse(d);
    if (!r.success) throw new Error(`${file}:\n${z.prettifyError(r.error)}`);
  });

  test('panel ids are unique and panels do not overlap', () => {
    const panels = d.panels as Array<{ id: number; gridPos: { x: number; y: number; w: number; h: number } }>;
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    const cells = new Set<string>();
    for (const p of panels) {
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          const c = `${x},${y}`;
          if (cells.has(c)) throw new Error(`panel ${p.id} overlaps another at ${c}`);
          cells.add(c);
        }
      }
    }
  });

  test('every panel query names metrics of the catalogue, and every variable too', () => {
    const queries = panelQueries(file, d).filter((q) => q.kind === 'prometheus');
    const selectors = promVariables(d).map((v) => ({ where: `${file}: $${v.name}`, query: v.selector }));
    for (const q of [...queries, ...selectors]) {
      const names = metricNames(q.query);
      expect({ where: q.where, names: names.length > 0 }).toEqual({ where: q.where, names: true });
      const unknown = names.filter((n) => !catalogueEntry(n));
      expect({ where: q.where, unknown }).toEqual({ where: q.where, unknown: [] });
    }
  });
});

test('every datasource a panel uses is provisioned, with the same type', () => {
  const prov = parse(readFileSync(join(root, 'grafana/provisioning/datasources/pipelines.yml'), 'utf8')) as {
    datasources: Array<{ uid: string; type: string }>;
  };
  const provisioned = new Map(prov.datasources.map((ds) => [ds.uid, ds.type]));
  expect(provisioned.get(PROMETHEUS_DATASOURCE.uid)).toBe('prometheus');
  expect(provisioned.get(CLICKHOUSE_DATASOURCE.uid)).toBe('grafana-clickhouse-datasource');
  for (const { file, dashboard } of dashboards) {
    const text = JSON.stringify(dashboard);
    for (const m of text.matchAll(/"datasource":\{"type":"([^"]+)","uid":"([^"]+)"\}/g)) {
      if (m[1] === 'grafana') continue; // the built-in annotations
      expect({ file, uid: m[2], type: provisioned.get(m[2]!) }).toEqual({ file, uid: m[2], type: m[1] });
    }
  }
});

test('the Order analytics dashboard has ClickHouse panels on the read models', () => {
  const sql = panelQueries('order-analytics.json', DASHBOARDS['order-analytics.json']!).filter(
    (q) => q.kind === 'clickhouse',
  );
  expect(sql.length).toBeGreaterThanOrEqual(6);
  const text = sql.map((q) => q.query).join('\n');
  for (const table of ['order_summary', 'revenue_by_segment_1m', 'revenue_by_product_1m'])
    expect(text).toContain(table);
});

describe('PromQL', () => {
  // Every expression, with Grafana's variables substituted as Grafana would, parsed by promtool (the
  // parser of the Prometheus we run): written as recording rules into a file that `promtool check rules` reads.
  const values = { ...TEST_INTERVALS, topology: 'orders', instance: '.+' };
  const all = [
    ...dashboards.flatMap(({ file, dashboard }) => [
      ...panelQueries(file, dashboard).filter((q) => q.kind === 'prometheus'),
      ...promVariables(dashboard).map((v) => ({ where: `${file}: $${v.name}`, query: v.selector })),
    ]),
    ...loadRules(alertsDir),
  ].map((q) => ({ where: q.where, expr: substituteVariables(q.query, values) }));

  const check = (exprs: string[]) => {
    const dir = mkdtempSync(join(tmpdir(), 'promql-'));
    try {
      const file = join(dir, 'rules.yml');
      const rules = exprs.map((expr, i) => ({ record: `check:expr_${i}`, expr }));
      writeFileSync(file, JSON.stringify({ groups: [{ name: 'check', rules }] }));
      return spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  test('no variable is left unsubstituted', () => {
    for (const q of all)
      expect({ where: q.where, left: /\$|\[\[/.test(q.expr) }).toEqual({ where: q.where, left: false });
  });

  test('every dashboard, variable and alert expression parses (promtool)', () => {
    expect(all.length).toBeGreaterThan(40);
    const r = check(all.map((q) => q.expr));
    if (r.status !== 0) {
      // Say which ones fail.
      const bad = all.filter((q) => check([q.expr]).status !== 0).map((q) => `${q.where}: ${q.expr}`);
      throw new Error(`promtool rejects:\n${bad.join('\n')}\n${r.stdout}${r.stderr}`);
    }
  });

  test('a broken expression is rejected (the check can fail)', () => {
    expect(check(['sum by (topology (rate(pipelines_records_in_total[1m]))']).status).not.toBe(0);
  });

  test('the alert rules pass `promtool check rules` and name only catalogued metrics', () => {
    const r = spawnSync('promtool', ['check', 'rules', join(alertsDir, 'pipelines.yml')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const rules = loadRules(alertsDir);
    expect(rules.map((r) => r.name).sort()).toEqual([
      'PipelinesDeadLetterRate',
      'PipelinesLagGrowing',
      'PipelinesNoProgress',
      'PipelinesNotReady',
      'PipelinesSagaFailedToCompensate',
    ]);
    for (const rule of rules) {
      const unknown = metricNames(rule.query).filter((n) => !catalogueEntry(n));
      expect({ rule: rule.name, unknown }).toEqual({ rule: rule.name, unknown: [] });
    }
  });
});

describe('metricNames', () => {
  test.each([
    ['sum by (topology, le) (rate(pipelines_x_bucket{a="b"}[$__rate_interval]))', ['pipelines_x_bucket']],
    ['histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) / on (instance) group_left (x) b', ['a_bucket', 'b']],
    ['label_values(pipelines_ready{topology="$topology"}, instance)', ['pipelines_ready']],
    ['min by (topology) (pipelines_ready) == 0 and c > 1e3', ['c', 'pipelines_ready']],
  ])('%s', (expr, names) => expect(metricNames(expr)).toEqual(names));
});
