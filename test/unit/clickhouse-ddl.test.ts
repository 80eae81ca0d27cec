// DDL text, the column diff, the environment config and the insert token: pure functions.

import { clickHouseConfigFromEnv, describeClickHouse } from '../../pipelines/sinks/clickhouse/connection.ts';
import {
  alterTableSql,
  createTableSql,
  diffColumns,
  isDestructive,
  normalizeType,
  type TableSpec,
} from '../../pipelines/sinks/clickhouse/ddl.ts';
import { dedupToken } from '../../pipelines/sinks/clickhouse/offsets.ts';
import { insertSettings } from '../../pipelines/sinks/clickhouse/writer.ts';

const columns = [
  { name: 'day', type: 'Date' },
  { name: 'country', type: 'LowCardinality(String)', comment: "buyer's country" },
  { name: 'amount', type: 'Decimal(18, 2)', default: '0', codec: 'ZSTD(1)' },
];

test.each<[string, TableSpec, string[]]>([
  [
    'MergeTree with partition, TTL and the dedup window',
    {
      table: 'orders',
      columns,
      engine: { kind: 'MergeTree' },
      orderBy: ['day', 'country'],
      partitionBy: 'toYYYYMM(day)',
      ttl: 'day + INTERVAL 1 YEAR',
    },
    [
      'CREATE TABLE IF NOT EXISTS `orders`',
      "`country` LowCardinality(String) COMMENT 'buyer\\'s country'",
      '`amount` Decimal(18, 2) DEFAULT 0 CODEC(ZSTD(1))',
      'ENGINE = MergeTree\nPARTITION BY toYYYYMM(day)\nORDER BY (day, country)\nTTL day + INTERVAL 1 YEAR',
      'SETTINGS non_replicated_deduplication_window = 1000',
    ],
  ],
  [
    'ReplacingMergeTree(version) in a database, no window',
    {
      table: 't',
      database: 'db',
      columns,
      engine: { kind: 'ReplacingMergeTree', version: 'amount' },
      orderBy: ['day'],
      dedupWindow: 0,
    },
    ['CREATE TABLE IF NOT EXISTS `db`.`t`', 'ENGINE = ReplacingMergeTree(`amount`)\nORDER BY (day)'],
  ],
  [
    'SummingMergeTree with columns and extra settings',
    {
      table: 's',
      columns,
      engine: { kind: 'SummingMergeTree', columns: ['amount'] },
      orderBy: ['day'],
      settings: { index_granularity: 8192, storage_policy: 'default' },
    },
    [
      'ENGINE = SummingMergeTree((`amount`))',
      "SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 8192, storage_policy = 'default'",
    ],
  ],
  [
    'AggregatingMergeTree without ORDER BY',
    { table: 'a', columns, engine: { kind: 'AggregatingMergeTree' } },
    ['ENGINE = AggregatingMergeTree\nORDER BY tuple()'],
  ],
  [
    'Null engine has no ORDER BY nor settings',
    { table: 'n', columns, engine: { kind: 'Null' }, orderBy: ['day'] },
    ['ENGINE = Null'],
  ],
])('createTableSql: %s', (_what, spec, fragments) => {
  const sql = createTableSql(spec);
  for (const f of fragments) expect(sql).toContain(f);
  if (spec.engine.kind === 'Null') expect(sql).not.toMatch(/ORDER BY|SETTINGS/);
});

test('normalizeType ignores whitespace outside quotes', () => {
  expect(normalizeType('Decimal(18,2)')).toBe(normalizeType('Decimal(18, 2)'));
  expect(normalizeType("DateTime64(3,'UTC')")).toBe(normalizeType("DateTime64(3, 'UTC')"));
  expect(normalizeType("Enum8('a b' = 1)")).not.toBe(normalizeType("Enum8('ab' = 1)"));
});

test('diffColumns: adds are safe, changes and drops are destructive', () => {
  const existing = [
    { name: 'day', type: 'Date' },
    { name: 'country', type: 'String' },
    { name: 'legacy', type: 'UInt8' },
  ];
  const diff = diffColumns(columns, existing);
  expect(diff.add.map((c) => c.name)).toEqual(['amount']);
  expect(diff.change).toEqual([{ name: 'country', from: 'String', to: 'LowCardinality(String)' }]);
  expect(diff.drop).toEqual(['legacy']);
  expect(isDestructive(diff)).toBe(true);
  expect(alterTableSql({ table: 't' }, diff)).toEqual([
    'ALTER TABLE `t` ADD COLUMN IF NOT EXISTS `amount` Decimal(18, 2) DEFAULT 0 CODEC(ZSTD(1))',
  ]);
  expect(alterTableSql({ table: 't' }, diff, true).slice(1)).toEqual([
    'ALTER TABLE `t` MODIFY COLUMN `country` LowCardinality(String)',
    'ALTER TABLE `t` DROP COLUMN IF EXISTS `legacy`',
  ]);
  expect(isDestructive(diffColumns(columns, [{ name: 'day', type: 'Date' }]))).toBe(false);
});

test('config: a URL selects the server, otherwise the embedded engine under .local/chdb', () => {
  expect(clickHouseConfigFromEnv({}, '/repo')).toEqual({ kind: 'embedded', path: '/repo/.local/chdb' });
  expect(clickHouseConfigFromEnv({ PIPELINES_CLICKHOUSE_PATH: '/data/ch' }, '/repo')).toEqual({
    kind: 'embedded',
    path: '/data/ch',
  });
  const server = clickHouseConfigFromEnv(
    {
      PIPELINES_CLICKHOUSE_URL: 'https://ch.example:8443',
      PIPELINES_CLICKHOUSE_USER: 'sink',
      PIPELINES_CLICKHOUSE_PASSWORD: 's3cret',
    },
    '/repo',
  );
  expect(server).toEqual({ kind: 'server', url: 'https://ch.example:8443', username: 'sink', password: 's3cret' });
  expect(describeClickHouse(server)).toBe('server https://ch.example:8443/ as sink');
  expect(describeClickHouse({ kind: 'server', url: 'http://u:s3cret@h:1' })).not.toContain('s3cret');
});

test('config: a cluster needs a server, Distributed tables a cluster', () => {
  const url = 'http://ch:8123';
  expect(
    clickHouseConfigFromEnv({ PIPELINES_CLICKHOUSE_URL: url, PIPELINES_CLICKHOUSE_CLUSTER: 'prod' }, '/repo'),
  ).toEqual({ kind: 'server', url: 'http://ch:8123', cluster: 'prod' });
  expect(() => clickHouseConfigFromEnv({ PIPELINES_CLICKHOUSE_CLUSTER: 'prod' }, '/repo')).toThrow(
    /PIPELINES_CLICKHOUSE_CLUSTER.*without PIPELINES_CLICKHOUSE_URL.*write PIPELINES_CLICKHOUSE_URL too/,
  );
  expect(() =>
    clickHouseConfigFromEnv({ PIPELINES_CLICKHOUSE_URL: url, PIPELINES_CLICKHOUSE_DISTRIBUTED: '1' }, '/repo'),
  ).toThrow(/PIPELINES_CLICKHOUSE_DISTRIBUTED.*without PIPELINES_CLICKHOUSE_CLUSTER/);
});

test('on a cluster: ON CLUSTER, the Replicated engine with its Keeper path, no non-replicated window', () => {
  const spec: TableSpec = {
    table: 'daily',
    columns,
    engine: { kind: 'SummingMergeTree', columns: ['amount'] },
    orderBy: ['day', 'country'],
  };
  expect(createTableSql(spec, { cluster: 'prod' })).toBe(
    [
      'CREATE TABLE IF NOT EXISTS `daily` ON CLUSTER `prod`',
      "(\n  `day` Date,\n  `country` LowCardinality(String) COMMENT 'buyer\\'s country',\n  `amount` Decimal(18, 2) DEFAULT 0 CODEC(ZSTD(1))\n)",
      "ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', (`amount`))",
      'ORDER BY (day, country)',
    ].join('\n'),
  );
  expect(createTableSql(spec)).toMatch(
    /ENGINE = SummingMergeTree\(\(`amount`\)\)[\s\S]*non_replicated_deduplication_window = 1000/,
  );
});

test('the token depends on every part of the source position and only on it', () => {
  const base = {
    topology: 'orders',
    sink: 'daily',
    table: 'sales',
    topic: 'orders.v1',
    partition: 3,
    first: '100',
    last: 199,
  };
  expect(dedupToken(base)).toBe('orders/daily/sales/orders.v1/3/100-199');
  expect(dedupToken({ ...base, first: 100n, last: '199' })).toBe(dedupToken(base));
  const variants = [
    { topology: 'x' },
    { sink: 'x' },
    { table: 'x' },
    { topic: 'x' },
    { partition: 4 },
    { first: 101 },
    { last: 200 },
  ];
  const tokens = new Set(variants.map((v) => dedupToken({ ...base, ...v })));
  expect(tokens.size).toBe(variants.length);
  expect(tokens.has(dedupToken(base))).toBe(false);
  expect(dedupToken({ ...base, topology: 'a/b' })).not.toBe(dedupToken({ ...base, topology: 'a', sink: 'b/daily' }));
});

test('insert settings: chdb states every dedup setting on each insert (they stick to its session)', () => {
  expect(insertSettings('embedded', undefined)).toEqual({
    input_format_skip_unknown_fields: 0,
    async_insert: 0,
    insert_deduplicate: 1,
    insert_deduplication_token: '',
  });
  expect(insertSettings('embedded', 't1').insert_deduplication_token).toBe('t1');
  expect(insertSettings('server', undefined)).toEqual({ input_format_skip_unknown_fields: 0 });
  expect(insertSettings('server', 't1')).toEqual({
    input_format_skip_unknown_fields: 0,
    insert_deduplication_token: 't1',
  });
});
