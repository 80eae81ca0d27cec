// The Grafana dashboards, written once as code and generated to grafana/dashboards/*.json (a test fails when
// the committed JSON differs). Panels reference the provisioned datasources by their fixed uids.
import { METRICS } from './metrics.ts';

export const PROMETHEUS_DATASOURCE = { type: 'prometheus', uid: 'pipelines-prometheus' } as const;
export const CLICKHOUSE_DATASOURCE = { type: 'grafana-clickhouse-datasource', uid: 'pipelines-clickhouse' } as const;

type Json = Record<string, unknown>;
interface Prom {
  expr: string;
  legend?: string;
}
interface PanelSpec {
  title: string;
  description?: string;
  /** Grid width (of 24); height 8 unless given. */
  w?: number;
  h?: number;
  build(id: number, gridPos: Json): Json;
}

const n = METRICS;
const base =
  (type: string, title: string, datasource: Json, targets: Json[], unit: string, options: Json, extra: Json = {}) =>
  (id: number, gridPos: Json): Json => ({
    id,
    type,
    title,
    datasource,
    gridPos,
    targets,
    fieldConfig: { defaults: { unit, ...((extra.defaults as Json) ?? {}) }, overrides: [] },
    options,
    ...(extra.description ? { description: extra.description } : {}),
  });

const promTargets = (queries: Prom[]) =>
  queries.map((q, i) => ({
    refId: String.fromCharCode(65 + i),
    datasource: PROMETHEUS_DATASOURCE,
    expr: q.expr,
    legendFormat: q.legend ?? '__auto',
    range: true,
    instant: false,
  }));

const tsOptions = {
  legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
  tooltip: { mode: 'multi', sort: 'desc' },
};

/** A Prometheus time series panel. */
function series(title: string, unit: string, queries: Prom[], o: { w?: number; description?: string } = {}): PanelSpec {
  return {
    title,
    w: o.w ?? 12,
    build: base('timeseries', title, PROMETHEUS_DATASOURCE, promTargets(queries), unit, tsOptions, {
      description: o.description,
    }),
  };
}

/** A Prometheus stat panel (last value). */
function stat(
  title: string,
  unit: string,
  queries: Prom[],
  o: { w?: number; mappings?: Json[]; thresholds?: Json; description?: string } = {},
): PanelSpec {
  return {
    title,
    w: o.w ?? 6,
    h: 5,
    build: base(
      'stat',
      title,
      PROMETHEUS_DATASOURCE,
      promTargets(queries),
      unit,
      {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: 'background',
        graphMode: 'none',
        textMode: 'value_and_name',
        justifyMode: 'auto',
        orientation: 'auto',
      },
      {
        description: o.description,
        defaults: {
          ...(o.mappings ? { mappings: o.mappings } : {}),
          thresholds: o.thresholds ?? { mode: 'absolute', steps: [{ color: 'green', value: null }] },
        },
      },
    ),
  };
}

/** A ClickHouse SQL panel (raw SQL editor), as the grafana-clickhouse-datasource plugin stores it. */
function clickhouse(
  title: string,
  type: 'timeseries' | 'table' | 'barchart' | 'piechart' | 'bargauge',
  unit: string,
  rawSql: string,
  o: { w?: number; description?: string } = {},
): PanelSpec {
  const timeSeries = type === 'timeseries';
  const options: Json =
    type === 'timeseries'
      ? tsOptions
      : type === 'table'
        ? { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], fields: '' } }
        : type === 'piechart'
          ? {
              reduceOptions: { calcs: ['lastNotNull'], fields: '', values: true },
              pieType: 'donut',
              legend: { displayMode: 'table', placement: 'right', showLegend: true, values: ['value'] },
            }
          : type === 'bargauge'
            ? {
                reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
                orientation: 'horizontal',
                displayMode: 'gradient',
                showUnfilled: true,
              }
            : { orientation: 'horizontal', xTickLabelRotation: 0, showValue: 'auto', legend: { showLegend: false } };
  const target = {
    refId: 'A',
    datasource: CLICKHOUSE_DATASOURCE,
    editorType: 'sql',
    queryType: timeSeries ? 'timeSeries' : 'table',
    format: timeSeries ? 0 : 1,
    rawSql: rawSql.trim().replace(/\s+/g, ' '),
  };
  return {
    title,
    w: o.w ?? 12,
    build: base(type, title, CLICKHOUSE_DATASOURCE, [target], unit, options, { description: o.description }),
  };
}

const rate = (metric: string, selector: string) => `rate(${metric}${selector}[$__rate_interval])`;
const quantile = (q: number, metric: string, by: string, selector: string) =>
  `histogram_quantile(${q}, sum by (${by}le) (rate(${metric}_bucket${selector}[$__rate_interval])))`;

function dashboard(o: {
  uid: string;
  title: string;
  description: string;
  tags: string[];
  variables?: Json[];
  rows: Array<{ title: string; panels: PanelSpec[] }>;
  time?: string;
}): Json {
  const panels: Json[] = [];
  let id = 1;
  let y = 0;
  for (const row of o.rows) {
    panels.push({
      id: id++,
      type: 'row',
      title: row.title,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y },
      panels: [],
    });
    y += 1;
    let x = 0;
    let rowHeight = 0;
    for (const p of row.panels) {
      const w = p.w ?? 12;
      const h = p.h ?? 8;
      if (x + w > 24) {
        x = 0;
        y += rowHeight;
        rowHeight = 0;
      }
      panels.push(p.build(id++, { h, w, x, y }));
      x += w;
      rowHeight = Math.max(rowHeight, h);
    }
    y += rowHeight;
  }
  return {
    uid: o.uid,
    title: o.title,
    description: o.description,
    tags: ['pipelines', ...o.tags],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    timezone: 'browser',
    refresh: '30s',
    time: { from: o.time ?? 'now-1h', to: 'now' },
    timepicker: {},
    fiscalYearStartMonth: 0,
    liveNow: false,
    links: [{ title: 'Pipelines', type: 'dashboards', tags: ['pipelines'], asDropdown: true, includeVars: true }],
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
      ],
    },
    templating: { list: o.variables ?? [] },
    panels,
  };
}

const readyMappings = [
  {
    type: 'value',
    options: {
      '0': { text: 'NOT READY', color: 'red', index: 0 },
      '1': { text: 'ready', color: 'green', index: 1 },
    },
  },
];
const readyThresholds = {
  mode: 'absolute',
  steps: [
    { color: 'red', value: null },
    { color: 'green', value: 1 },
  ],
};

const overview = dashboard({
  uid: 'pipelines-overview',
  title: 'Pipelines overview',
  description: 'Every topology: throughput, lag, end-to-end latency, errors and dead letters, health.',
  tags: ['overview'],
  rows: [
    {
      title: 'Health',
      panels: [
        stat('Ready', 'none', [{ expr: `min by (topology) (${n.ready.name})`, legend: '{{topology}}' }], {
          w: 8,
          mappings: readyMappings,
          thresholds: readyThresholds,
          description: 'min over replicas of /readyz: partitions assigned, tables caught up, sinks reachable',
        }),
        stat('Replicas', 'none', [{ expr: `count by (topology) (${n.ready.name})`, legend: '{{topology}}' }], {
          w: 8,
        }),
        stat(
          'Assigned partitions',
          'none',
          [{ expr: `sum by (topology) (${n.assignedPartitions.name})`, legend: '{{topology}}' }],
          { w: 8 },
        ),
      ],
    },
    {
      title: 'Throughput and lag',
      panels: [
        series('Records in / s', 'cps', [
          { expr: `sum by (topology) (${rate(n.recordsIn.name, '')})`, legend: '{{topology}}' },
        ]),
        series('Rows out / s', 'cps', [
          { expr: `sum by (topology) (${rate(n.recordsOut.name, '')})`, legend: '{{topology}}' },
        ]),
        series('Consumer lag (records)', 'short', [
          { expr: `sum by (topology) (${n.consumerLagRecords.name})`, legend: '{{topology}}' },
        ]),
        series('Consumer lag (seconds, worst partition)', 's', [
          { expr: `max by (topology) (${n.consumerLagSeconds.name})`, legend: '{{topology}}' },
        ]),
      ],
    },
    {
      title: 'Latency and errors',
      panels: [
        series(
          'End-to-end latency (event time → sink ack)',
          's',
          [
            { expr: quantile(0.5, n.endToEndLatency.name, 'topology, ', ''), legend: '{{topology}} p50' },
            { expr: quantile(0.99, n.endToEndLatency.name, 'topology, ', ''), legend: '{{topology}} p99' },
          ],
          { w: 24 },
        ),
        series('Dead letters / s', 'cps', [
          { expr: `sum by (topology, reason) (${rate(n.deadLetters.name, '')})`, legend: '{{topology}} {{reason}}' },
        ]),
        series('Errors / s (retries, ClickHouse insert errors)', 'cps', [
          { expr: `sum by (topology, reason) (${rate(n.retries.name, '')})`, legend: '{{topology}} retry {{reason}}' },
          {
            expr: `sum by (topology, reason) (${rate(n.clickhouseInsertErrors.name, '')})`,
            legend: '{{topology}} insert {{reason}}',
          },
        ]),
      ],
    },
  ],
});

const T = '{topology="$topology"}';
const TI = '{instance=~"$instance"}';
const detail = dashboard({
  uid: 'pipelines-topology',
  title: 'Topology detail',
  description: 'One topology: steps, batches, commits, rebalances, sinks and ClickHouse inserts, tables, runtime.',
  tags: ['topology'],
  variables: [
    {
      type: 'query',
      name: 'topology',
      label: 'Topology',
      datasource: PROMETHEUS_DATASOURCE,
      query: {
        query: `label_values(${n.recordsIn.name}, topology)`,
        refId: 'PrometheusVariableQueryEditor-VariableQuery',
      },
      definition: `label_values(${n.recordsIn.name}, topology)`,
      refresh: 2,
      sort: 1,
      multi: false,
      includeAll: false,
      options: [],
      current: {},
      hide: 0,
    },
    {
      type: 'query',
      name: 'instance',
      label: 'Worker',
      datasource: PROMETHEUS_DATASOURCE,
      query: {
        query: `label_values(${n.ready.name}{topology="$topology"}, instance)`,
        refId: 'PrometheusVariableQueryEditor-VariableQuery',
      },
      definition: `label_values(${n.ready.name}{topology="$topology"}, instance)`,
      refresh: 2,
      sort: 1,
      multi: true,
      includeAll: true,
      allValue: '.+',
      options: [],
      current: {},
      hide: 0,
    },
  ],
  rows: [
    {
      title: 'Source',
      panels: [
        series('Records in / s by partition', 'cps', [
          { expr: `sum by (topic, partition) (${rate(n.recordsIn.name, T)})`, legend: '{{topic}}/{{partition}}' },
        ]),
        series('Rows out / s by sink', 'cps', [
          { expr: `sum by (sink) (${rate(n.recordsOut.name, T)})`, legend: '{{sink}}' },
        ]),
        series('Lag (records) by partition', 'short', [
          { expr: `sum by (topic, partition) (${n.consumerLagRecords.name}${T})`, legend: '{{topic}}/{{partition}}' },
        ]),
        series('Lag (seconds) by partition', 's', [
          { expr: `max by (topic, partition) (${n.consumerLagSeconds.name}${T})`, legend: '{{topic}}/{{partition}}' },
        ]),
        series('Batch size (records)', 'short', [
          { expr: quantile(0.5, n.batchSize.name, '', T), legend: 'p50' },
          { expr: quantile(0.99, n.batchSize.name, '', T), legend: 'p99' },
          {
            expr: `sum(${rate(`${n.batchSize.name}_sum`, T)}) / sum(${rate(`${n.batchSize.name}_count`, T)})`,
            legend: 'mean',
          },
        ]),
        series('Partitions, paused, rebalances', 'short', [
          { expr: `sum(${n.assignedPartitions.name}${T})`, legend: 'assigned partitions' },
          { expr: `max(${n.consumerPaused.name}${T})`, legend: 'paused' },
          { expr: `sum by (reason) (increase(${n.rebalances.name}${T}[$__range]))`, legend: 'rebalances: {{reason}}' },
        ]),
      ],
    },
    {
      title: 'Steps',
      panels: [
        series('Step time per batch, p99', 's', [
          { expr: quantile(0.99, n.stepDuration.name, 'step, ', T), legend: '{{step}}' },
        ]),
        series('Step records in and out / s', 'cps', [
          { expr: `sum by (step) (${rate(n.stepRecordsIn.name, T)})`, legend: '{{step}} in' },
          { expr: `sum by (step) (${rate(n.stepRecordsOut.name, T)})`, legend: '{{step}} out' },
        ]),
        series('Dead letters / s by step and reason', 'cps', [
          { expr: `sum by (step, reason) (${rate(n.deadLetters.name, T)})`, legend: '{{step}}: {{reason}}' },
        ]),
        series('Late events / s by step', 'cps', [
          { expr: `sum by (step) (${rate(n.lateEvents.name, T)})`, legend: '{{step}}' },
        ]),
      ],
    },
    {
      title: 'Commits and sinks',
      panels: [
        series('Commits / s and commit latency', 's', [
          { expr: `sum(${rate(n.commits.name, T)})`, legend: 'commits/s' },
          { expr: quantile(0.99, n.commitDuration.name, '', T), legend: 'commit p99' },
        ]),
        series('End-to-end latency by sink', 's', [
          { expr: quantile(0.5, n.endToEndLatency.name, 'sink, ', T), legend: '{{sink}} p50' },
          { expr: quantile(0.99, n.endToEndLatency.name, 'sink, ', T), legend: '{{sink}} p99' },
        ]),
        series('Sink flush p99 and health', 's', [
          { expr: quantile(0.99, n.sinkFlushDuration.name, 'sink, ', T), legend: '{{sink}} flush p99' },
          { expr: `min by (sink) (${n.sinkUp.name}${T})`, legend: '{{sink}} up' },
        ]),
        series('Retries / s by reason', 'cps', [
          { expr: `sum by (reason, sink) (${rate(n.retries.name, T)})`, legend: '{{reason}} {{sink}}' },
        ]),
      ],
    },
    {
      title: 'ClickHouse',
      panels: [
        series('Rows inserted / s', 'cps', [
          { expr: `sum by (sink) (${rate(n.clickhouseRows.name, T)})`, legend: '{{sink}}' },
        ]),
        series('Insert latency', 's', [
          { expr: quantile(0.5, n.clickhouseInsertDuration.name, 'sink, ', T), legend: '{{sink}} p50' },
          { expr: quantile(0.99, n.clickhouseInsertDuration.name, 'sink, ', T), legend: '{{sink}} p99' },
        ]),
        series('Insert errors / s by code', 'cps', [
          { expr: `sum by (sink, reason) (${rate(n.clickhouseInsertErrors.name, T)})`, legend: '{{sink}} {{reason}}' },
        ]),
        series('Rows in flight', 'short', [
          { expr: `sum by (sink) (${n.clickhouseInFlight.name}${T})`, legend: '{{sink}} in flight' },
        ]),
      ],
    },
    {
      title: 'Lookup tables',
      panels: [
        series('Table rows', 'short', [{ expr: `max by (topic) (${n.tableRows.name}${T})`, legend: '{{topic}}' }], {
          w: 8,
        }),
        series(
          'Table catch-up (records behind)',
          'short',
          [{ expr: `max by (topic) (${n.tableCatchupRecords.name}${T})`, legend: '{{topic}}' }],
          { w: 8 },
        ),
        series(
          'Tables caught up',
          'short',
          [{ expr: `min by (topic) (${n.tableCaughtUp.name}${T})`, legend: '{{topic}}' }],
          { w: 8 },
        ),
      ],
    },
    {
      title: 'Node runtime',
      panels: [
        series(
          'Event loop delay p99',
          's',
          [{ expr: `max by (instance) (pipelines_nodejs_eventloop_lag_p99_seconds${TI})`, legend: '{{instance}}' }],
          { w: 6 },
        ),
        series(
          'Heap used',
          'bytes',
          [{ expr: `sum by (instance) (pipelines_nodejs_heap_size_used_bytes${TI})`, legend: '{{instance}}' }],
          { w: 6 },
        ),
        series(
          'GC time / s',
          's',
          [
            {
              expr: `sum by (instance, kind) (rate(pipelines_nodejs_gc_duration_seconds_sum${TI}[$__rate_interval]))`,
              legend: '{{instance}} {{kind}}',
            },
          ],
          { w: 6 },
        ),
        series(
          'CPU (cores)',
          'short',
          [
            {
              expr: `sum by (instance) (rate(pipelines_process_cpu_seconds_total${TI}[$__rate_interval]))`,
              legend: '{{instance}}',
            },
          ],
          { w: 6 },
        ),
      ],
    },
  ],
});

const orders = dashboard({
  uid: 'pipelines-orders',
  title: 'Order analytics',
  description: 'Business view on the ClickHouse read models written by the pipelines.',
  tags: ['orders', 'business'],
  time: 'now-24h',
  rows: [
    {
      title: 'Revenue',
      panels: [
        clickhouse(
          'Revenue per minute',
          'timeseries',
          'currencyUSD',
          `SELECT window_start AS time, sum(revenue) AS revenue
           FROM revenue_by_segment_1m WHERE $__timeFilter(window_start)
           GROUP BY time ORDER BY time`,
        ),
        clickhouse(
          'Revenue per minute by segment',
          'timeseries',
          'currencyUSD',
          `SELECT window_start AS time, segment, sum(revenue) AS revenue
           FROM revenue_by_segment_1m WHERE $__timeFilter(window_start)
           GROUP BY time, segment ORDER BY time`,
        ),
        clickhouse(
          'Orders per minute',
          'timeseries',
          'short',
          `SELECT window_start AS time, sum(orders) AS orders
           FROM revenue_by_segment_1m WHERE $__timeFilter(window_start)
           GROUP BY time ORDER BY time`,
        ),
        clickhouse(
          'Top products by revenue',
          'table',
          'none',
          `SELECT product_id, sum(revenue) AS revenue, sum(quantity) AS quantity
           FROM revenue_by_product_1m WHERE $__timeFilter(window_start)
           GROUP BY product_id ORDER BY revenue DESC LIMIT 10`,
        ),
      ],
    },
    {
      title: 'Orders',
      panels: [
        clickhouse(
          'Orders by status',
          'piechart',
          'short',
          `SELECT status, count() AS orders
           FROM order_summary FINAL WHERE $__timeFilter(placed_at)
           GROUP BY status ORDER BY orders DESC`,
          { w: 8 },
        ),
        clickhouse(
          'Funnel: placed → paid → shipped',
          'bargauge',
          'short',
          `SELECT countIf(placed_at IS NOT NULL) AS placed, countIf(paid_at IS NOT NULL) AS paid,
                  countIf(shipped_at IS NOT NULL) AS shipped, countIf(cancelled_at IS NOT NULL) AS cancelled
           FROM order_summary FINAL WHERE $__timeFilter(placed_at)`,
          { w: 8 },
        ),
        clickhouse(
          'Average order value',
          'timeseries',
          'currencyUSD',
          `SELECT $__timeInterval(placed_at) AS time, avg(total_amount) AS average_order_value
           FROM order_summary FINAL WHERE $__timeFilter(placed_at)
           GROUP BY time ORDER BY time`,
          { w: 8 },
        ),
        series(
          'Late events / s (arrived after their window closed)',
          'cps',
          [{ expr: `sum by (topology, step) (${rate(n.lateEvents.name, '')})`, legend: '{{topology}} {{step}}' }],
          { w: 24 },
        ),
      ],
    },
  ],
});

/** The dashboards, by file name under grafana/dashboards/. */
export const DASHBOARDS: Record<string, Json> = {
  'pipelines-overview.json': overview,
  'pipelines-topology.json': detail,
  'order-analytics.json': orders,
};
