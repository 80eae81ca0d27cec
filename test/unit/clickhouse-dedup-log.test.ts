// dropUncommittedDedupRecords on data directories laid out as the embedded engine leaves them:
// which records it drops (a part no directory covers), which it keeps (merged, dropped, committed).

import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dropUncommittedDedupRecords } from '../../pipelines/sinks/clickhouse/dedup-log.ts';

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

test('drops the record of a part that never reached the disk, and only that one', () => {
  const dir = table('abc-1', ['all_1_1_0', 'all_2_2_0', 'tmp_insert_all_3_3_0', 'detached'], {
    'deduplication_log_1.txt': add('all_1_1_0', 'all_a') + add('all_2_2_0', 'all_b') + add('all_3_3_0', 'all_c'),
  });
  expect(dropUncommittedDedupRecords(root)).toEqual([
    { table: join('store', 'abc', 'abc-1'), part: 'all_3_3_0', blockId: 'all_c' },
  ]);
  expect(log(dir).split('\n').filter(Boolean).at(-1)).toBe('2\tall_3_3_0\tall_c');
  // A second pass finds nothing more to do.
  expect(dropUncommittedDedupRecords(root)).toEqual([]);
});

test('a merged or mutated part covers the blocks of its sources; partitions are told apart', () => {
  table('abc-2', ['2024_1_4_1', '2025_5_5_0_7'], {
    'deduplication_log_1.txt': add('2024_1_1_0', '2024_a') + add('2024_3_3_0', '2024_b'),
    'deduplication_log_2.txt': add('2025_5_5_0', '2025_c') + add('2025_2_2_0', '2025_d'),
  });
  expect(dropUncommittedDedupRecords(root).map((d) => d.part)).toEqual(['2025_2_2_0']);
});

test('records already dropped stay dropped; the DROP goes to the newest log', () => {
  const dir = table('abc-3', ['all_1_1_0'], {
    'deduplication_log_1.txt': add('all_1_1_0', 'all_a') + add('all_2_2_0', 'all_b') + drop('all_2_2_0', 'all_b'),
    'deduplication_log_10.txt': add('all_4_4_0', 'all_d'),
    'deduplication_log_9.txt': '',
  });
  expect(dropUncommittedDedupRecords(root).map((d) => d.blockId)).toEqual(['all_d']);
  expect(log(dir, 'deduplication_log_10.txt')).toBe(add('all_4_4_0', 'all_d') + drop('all_4_4_0', 'all_d'));
});

test('a record cut short by the kill is cut off before anything is appended', () => {
  const dir = table('abc-4', ['all_1_1_0'], {
    'deduplication_log_1.txt': `${add('all_1_1_0', 'all_a') + add('all_2_2_0', 'all_b')}1\tall_3_3_0\tall_`,
  });
  expect(dropUncommittedDedupRecords(root).map((d) => d.part)).toEqual(['all_2_2_0']);
  expect(log(dir)).toBe(add('all_1_1_0', 'all_a') + add('all_2_2_0', 'all_b') + drop('all_2_2_0', 'all_b'));
});

test('a log in a format it does not know is left as it is', () => {
  const text = '1 all_2_2_0 all_b\n';
  const dir = table('abc-5', [], { 'deduplication_log_1.txt': text });
  expect(dropUncommittedDedupRecords(root)).toEqual([]);
  expect(log(dir)).toBe(text);
});

test('a table reached through data/<db>/<table> links is repaired once; a missing directory is no error', () => {
  table('abc-6', [], { 'deduplication_log_1.txt': add('all_1_1_0', 'all_a') });
  mkdirSync(join(root, 'data', 'default'), { recursive: true });
  symlinkSync(join(root, 'store', 'abc', 'abc-6'), join(root, 'data', 'default', 't'));
  expect(dropUncommittedDedupRecords(root)).toHaveLength(1);
  expect(dropUncommittedDedupRecords(join(root, 'nothing-here'))).toEqual([]);
});
