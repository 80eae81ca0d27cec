// dropUncommittedDedupRecords on data directories laid out as the embedded engine leaves them:
// which records it drops (a part no directory covers), which it keeps (merged, dropped, committed);
// and that it does so only on an engine it was tested on, changing nothing on another unless told to.

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clickHouseConfigFromEnv } from '../../pipelines/sinks/clickhouse/connection.ts';
import {
  type DedupRepairMode,
  dedupRepairModeFromEnv,
  dropUncommittedDedupRecords,
  type EngineVersion,
  isTestedEngine,
  TESTED_ENGINES,
} from '../../pipelines/sinks/clickhouse/dedup-log.ts';
import { ClickHouseSinkError } from '../../pipelines/sinks/clickhouse/errors.ts';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'pipelines-dedup-log-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** A table directory with these part directories and these log files (name → lines). */
function table(uuid: string, parts: string[], logs: Record<string, string>): string {
  const dir = join(root, 'store', uuid.slice(0, 3), uuid);
  mkdirSync(join(dir, 'deduplication_logs'), { recursive: true });
  for (const p of parts) mkdirSync(join(dir, p));
  for (const [name, text] of Object.entries(logs)) writeFileSync(join(dir, 'deduplication_logs', name), text);
  return dir;
}
const add = (part: string, id: string) => `1\t${part}\t${id}\n`;
const drop = (part: string, id: string) => `2\t${part}\t${id}\n`;
const log = (dir: string, name = 'deduplication_log_1.txt') =>
  readFileSync(join(dir, 'deduplication_logs', name), 'utf8');

const TESTED: EngineVersion = TESTED_ENGINES[0]!;
/** An engine the repair was not tested on: a newer library under the same package, as an override would give. */
const UNTESTED: EngineVersion = { chdb: TESTED.chdb, engine: '99.1.1' };
const repair = (path = root, engine = TESTED, mode?: DedupRepairMode) =>
  dropUncommittedDedupRecords(path, engine, mode);

/** Every file under `dir` with its bytes, to show that nothing was changed. */
function snapshot(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) files.set(join(e.parentPath, e.name), readFileSync(join(e.parentPath, e.name)));
  }
  return files;
}
/** Tables that need the repair: a record whose part never landed, and a log ending in a record cut short. */
function damaged(): void {
  table('abc-7', ['all_1_1_0'], { 'deduplication_log_1.txt': add('all_1_1_0', 'all_a') + add('all_2_2_0', 'all_b') });
  table('abc-8', ['all_1_1_0'], { 'deduplication_log_1.txt': `${add('all_1_1_0', 'all_a')}1\tall_2_2_0\tall_` });
}

test('drops the record of a part that never reached the disk, and only that one', () => {
  const dir = table('abc-1', ['all_1_1_0', 'all_2_2_0', 'tmp_insert_all_3_3_0', 'detached'], {
    'deduplication_log_1.txt': add('all_1_1_0', 'all_a') + add('all_2_2_0', 'all_b') + add('all_3_3_0', 'all_c'),
  });
  expect(repair()).toEqual([{ table: join('store', 'abc', 'abc-1'), part: 'all_3_3_0', blockId: 'all_c' }]);
  expect(log(dir).split('\n').filter(Boolean).at(-1)).toBe('2\tall_3_3_0\tall_c');
  // A second pass finds nothing more to do.
  expect(repair()).toEqual([]);
});

test('a merged or mutated part covers the blocks of its sources; partitions are told apart', () => {
  table('abc-2', ['2024_1_4_1', '2025_5_5_0_7'], {
    'deduplication_log_1.txt': add('2024_1_1_0', '2024_a') + add('2024_3_3_0', '2024_b'),
    'deduplication_log_2.txt': add('2025_5_5_0', '2025_c') + add('2025_2_2_0', '2025_d'),
  });
  expect(repair().map((d) => d.part)).toEqual(['2025_2_2_0']);
});

test('records already dropped stay dropped; the DROP goes to the newest log', () => {
  const dir = table('abc-3', ['all_1_1_0'], {
    'deduplication_log_1.txt': add('all_1_1_0', 'all_a') + add('all_2_2_0', 'all_b') + drop('all_2_2_0', 'all_b'),
    'deduplication_log_10.txt': add('all_4_4_0', 'all_d'),
    'deduplication_log_9.txt': '',
  });
  expect(repair().map((d) => d.blockId)).toEqual(['all_d']);
  expect(log(dir, 'deduplication_log_10.txt')).toBe(add('all_4_4_0', 'all_d') + drop('all_4_4_0', 'all_d'));
});

test('a record cut short by the kill is cut off before anything is appended', () => {
  const dir = table('abc-4', ['all_1_1_0'], {
    'deduplication_log_1.txt': `${add('all_1_1_0', 'all_a') + add('all_2_2_0', 'all_b')}1\tall_3_3_0\tall_`,
  });
  expect(repair().map((d) => d.part)).toEqual(['all_2_2_0']);
  expect(log(dir)).toBe(add('all_1_1_0', 'all_a') + add('all_2_2_0', 'all_b') + drop('all_2_2_0', 'all_b'));
});

test('a log in a format it does not know is left as it is', () => {
  const text = '1 all_2_2_0 all_b\n';
  const dir = table('abc-5', [], { 'deduplication_log_1.txt': text });
  expect(repair()).toEqual([]);
  expect(log(dir)).toBe(text);
});

test('a table reached through data/<db>/<table> links is repaired once; a missing directory is no error', () => {
  table('abc-6', [], { 'deduplication_log_1.txt': add('all_1_1_0', 'all_a') });
  mkdirSync(join(root, 'data', 'default'), { recursive: true });
  symlinkSync(join(root, 'store', 'abc', 'abc-6'), join(root, 'data', 'default', 't'));
  expect(repair()).toHaveLength(1);
  expect(repair(join(root, 'nothing-here'))).toEqual([]);
});

test('only the engines the repair was tested on count as tested: package and library both', () => {
  expect(isTestedEngine(TESTED)).toBe(true);
  expect(isTestedEngine({ ...TESTED })).toBe(true);
  expect(isTestedEngine(UNTESTED)).toBe(false);
  expect(isTestedEngine({ chdb: '9.9.9', engine: TESTED.engine })).toBe(false);
  expect(isTestedEngine({ chdb: TESTED.chdb, engine: 'unknown' })).toBe(false);
});

test('on a tested engine the logs are repaired', () => {
  damaged();
  const before = snapshot(root);
  expect(repair(root, TESTED).map((d) => d.part)).toEqual(['all_2_2_0']);
  const after = snapshot(root);
  const log7 = [...after.keys()].find((f) => f.includes('abc-7'))!;
  const log8 = [...after.keys()].find((f) => f.includes('abc-8'))!;
  expect(after.get(log7)!.toString()).toBe(
    add('all_1_1_0', 'all_a') + add('all_2_2_0', 'all_b') + drop('all_2_2_0', 'all_b'),
  );
  expect(after.get(log8)!.toString()).toBe(add('all_1_1_0', 'all_a'));
  expect(after).not.toEqual(before);
});

test('on an untested engine a directory with nothing to repair opens, untouched', () => {
  table('abc-9', ['all_1_4_1'], {
    'deduplication_log_1.txt': add('all_1_1_0', 'all_a') + add('all_2_2_0', 'all_b') + drop('all_3_3_0', 'all_c'),
  });
  table('abc-10', [], { 'deduplication_log_1.txt': '1 all_2_2_0 all_b\n' }); // a format it does not know
  const before = snapshot(root);
  expect(repair(root, UNTESTED)).toEqual([]);
  expect(repair(join(root, 'nothing-here'), UNTESTED)).toEqual([]);
  expect(snapshot(root)).toEqual(before);
});

test('on an untested engine a directory that needs the repair is refused, every byte as it was', () => {
  damaged();
  const before = snapshot(root);
  let thrown: unknown;
  try {
    repair(root, UNTESTED);
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(ClickHouseSinkError);
  const err = thrown as ClickHouseSinkError;
  expect(err.code).toBe('CH_DEDUP_UNTESTED_ENGINE');
  expect(err.retriable).toBe(false);
  // What was found, on what, and the ways out.
  expect(err.message).toContain(
    `embedded ClickHouse at ${root} holds 1 deduplication record of parts that are not on disk`,
  );
  expect(err.message).toContain(`${join('store', 'abc', 'abc-7')}: all_2_2_0`);
  expect(err.message).toContain(`1 deduplication log ending in a record cut short (${join('store', 'abc', 'abc-8')})`);
  expect(err.message).toContain(`this is chdb ${UNTESTED.chdb} (engine ${UNTESTED.engine})`);
  expect(err.message).toContain(`tested on chdb ${TESTED.chdb} (engine ${TESTED.engine})`);
  expect(err.message).toContain(`npm install chdb@${TESTED.chdb}`);
  expect(err.message).toContain('PIPELINES_CLICKHOUSE_DEDUP_REPAIR=force');
  expect(err.message).toContain('PIPELINES_CLICKHOUSE_DEDUP_REPAIR=off');
  expect(snapshot(root)).toEqual(before);
  // A log cut short is a change too: on its own it is refused as well.
  rmSync(join(root, 'store', 'abc', 'abc-7'), { recursive: true });
  expect(() => repair(root, UNTESTED)).toThrow(expect.objectContaining({ code: 'CH_DEDUP_UNTESTED_ENGINE' }));
  expect(snapshot(root)).toEqual(new Map([...before].filter(([f]) => !f.includes('abc-7'))));
});

test('force repairs on any engine; off reads and changes nothing on any engine', () => {
  damaged();
  const before = snapshot(root);
  expect(repair(root, UNTESTED, 'off')).toEqual([]);
  expect(repair(root, TESTED, 'off')).toEqual([]);
  expect(snapshot(root)).toEqual(before);
  expect(repair(root, UNTESTED, 'force').map((d) => d.part)).toEqual(['all_2_2_0']);
  const forced = snapshot(root);
  expect(forced).not.toEqual(before);
  // The same result a tested engine gives.
  rmSync(root, { recursive: true, force: true });
  damaged();
  repair(root, TESTED, 'auto');
  expect(snapshot(root)).toEqual(forced);
});

test('PIPELINES_CLICKHOUSE_DEDUP_REPAIR: auto when unset, auto, force or off, anything else an error', () => {
  expect(dedupRepairModeFromEnv({})).toBe('auto');
  expect(dedupRepairModeFromEnv({ PIPELINES_CLICKHOUSE_DEDUP_REPAIR: '' })).toBe('auto');
  expect(dedupRepairModeFromEnv({ PIPELINES_CLICKHOUSE_DEDUP_REPAIR: 'auto' })).toBe('auto');
  expect(dedupRepairModeFromEnv({ PIPELINES_CLICKHOUSE_DEDUP_REPAIR: 'force' })).toBe('force');
  expect(dedupRepairModeFromEnv({ PIPELINES_CLICKHOUSE_DEDUP_REPAIR: ' OFF ' })).toBe('off');
  expect(() => dedupRepairModeFromEnv({ PIPELINES_CLICKHOUSE_DEDUP_REPAIR: 'of' })).toThrow(
    expect.objectContaining({
      code: 'CONFIG',
      message:
        "PIPELINES_CLICKHOUSE_DEDUP_REPAIR: unknown value 'of' (did you mean 'off'?): write one of auto, force, off",
    }),
  );
});

test('clickHouseConfigFromEnv passes the variable on to the embedded engine, and rejects a value it cannot take', () => {
  expect(clickHouseConfigFromEnv({ PIPELINES_CLICKHOUSE_DEDUP_REPAIR: 'force' }, '/repo')).toEqual({
    kind: 'embedded',
    path: '/repo/.local/chdb',
    dedupRepair: 'force',
  });
  // Unset: openClickHouse reads it from process.env, so a config built by hand honours it too.
  expect(clickHouseConfigFromEnv({}, '/repo')).toEqual({ kind: 'embedded', path: '/repo/.local/chdb' });
  expect(() => clickHouseConfigFromEnv({ PIPELINES_CLICKHOUSE_DEDUP_REPAIR: 'yes' }, '/repo')).toThrow(
    expect.objectContaining({ code: 'CONFIG' }),
  );
  // A server has no logs of ours to repair.
  expect(
    clickHouseConfigFromEnv({ PIPELINES_CLICKHOUSE_URL: 'http://ch:8123', PIPELINES_CLICKHOUSE_DEDUP_REPAIR: 'yes' }),
  ).toEqual({ kind: 'server', url: 'http://ch:8123' });
});
