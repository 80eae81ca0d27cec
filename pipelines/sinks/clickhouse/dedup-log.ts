// Keeps the embedded engine's insert deduplication logs true to its parts after a crash.
//
// A non-replicated MergeTree appends an insert's block id to `deduplication_logs/` before it renames the new
// part into place, and reads the logs back without checking its parts. A kill -9 between the two (in the
// embedded engine, killing the worker kills ClickHouse) leaves a record for a part that never existed: the
// replay of that range, under the same token, is dropped as a duplicate and its rows are lost (seen twice in
// 208 random kills of a process inserting with tokens; test/integration/clickhouse-dedup-repair.test.ts makes
// it happen). So before the engine opens a data directory we append a DROP record (the engine's own record
// kind, written when a partition is dropped) for every block id whose part is on no part directory of the
// table. Parts cover blocks [min, max]: a merged part covers its sources. This reads the embedded engine's
// single-disk layout; a table spread over several disks is not supported.
//
// That rests on how this engine writes and reads the logs, which a later engine may change without changing
// the files' shape; a wrong DROP would then turn a replay into a double count. So the repair runs only on the
// engines it was tested on (TESTED_ENGINES). On another, a directory that needs no repair opens as usual, and
// one that does is refused (CH_DEDUP_UNTESTED_ENGINE) with nothing changed, unless
// PIPELINES_CLICKHOUSE_DEDUP_REPAIR says `force` (repair anyway) or `off` (open without it).

import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
  truncateSync,
  writeSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { oneOf } from '../../settings.ts';
import { ClickHouseSinkError } from './errors.ts';

export interface DroppedDedupRecord {
  /** The table's data directory, relative to the engine's data path. */
  table: string;
  /** The part the record named, which no part on disk covers. */
  part: string;
  blockId: string;
}

/** The embedded engine as openClickHouse reads it before it opens anything (connection.ts, embeddedEngineVersion). */
export interface EngineVersion {
  /** The `chdb` npm package's version. */
  chdb: string;
  /** `chdb_version()` of the native library that package loads; `unknown` when it cannot be read. */
  engine: string;
}

/**
 * The engines the repair was tested on: test/integration/clickhouse-dedup-repair.test.ts passes on them (the
 * engine alone loses the replay, the repair lets it land once). To add one, add it here and run that test.
 */
export const TESTED_ENGINES: readonly EngineVersion[] = [{ chdb: '3.4.0', engine: '26.7.3' }];

export function isTestedEngine(v: EngineVersion): boolean {
  return TESTED_ENGINES.some((t) => t.chdb === v.chdb && t.engine === v.engine);
}

/**
 * PIPELINES_CLICKHOUSE_DEDUP_REPAIR: `auto` (unset: repair on a tested engine, refuse to guess on another),
 * `force` (repair on any engine) or `off` (never read nor change the logs).
 */
export type DedupRepairMode = 'auto' | 'force' | 'off';
const DEDUP_REPAIR_MODES = ['auto', 'force', 'off'] as const;
export const DEDUP_REPAIR_VARIABLE = 'PIPELINES_CLICKHOUSE_DEDUP_REPAIR';

export function dedupRepairModeFromEnv(env: NodeJS.ProcessEnv = process.env): DedupRepairMode {
  const value = env[DEDUP_REPAIR_VARIABLE];
  return value?.trim() ? oneOf(DEDUP_REPAIR_VARIABLE, value, DEDUP_REPAIR_MODES) : 'auto';
}

interface PartName {
  partition: string;
  min: number;
  max: number;
}

/** `<partition>_<min>_<max>_<level>[_<mutation>]`; partition ids hold no underscore in this format. */
function parsePartName(name: string): PartName | undefined {
  const m = /^([^_]+)_(\d+)_(\d+)_(\d+)(?:_(\d+))?$/.exec(name);
  if (!m) return undefined;
  return { partition: m[1]!, min: Number(m[2]), max: Number(m[3]) };
}

/** Table data directories with a deduplication log: `store/<xyz>/<uuid>` (Atomic) and `data/<db>/<table>`. */
function tableDirs(dataPath: string): string[] {
  const found = new Map<string, string>();
  const scan = (parent: string, depth: number) => {
    if (!existsSync(parent)) return;
    for (const e of readdirSync(parent)) {
      const dir = join(parent, e);
      let isDir = false;
      try {
        isDir = statSync(dir).isDirectory();
      } catch {
        continue; // a dangling link
      }
      if (!isDir) continue;
      if (depth > 1) scan(dir, depth - 1);
      else if (existsSync(join(dir, 'deduplication_logs'))) found.set(realpathSync(dir), dir);
    }
  };
  scan(join(dataPath, 'store'), 2);
  scan(join(dataPath, 'data'), 2);
  return [...found.keys()].sort();
}

/**
 * The process that has an engine open on `dataPath`, if another one does: the engine holds a lock on its
 * `status` file (and removes the file on a clean close; a killed engine leaves it unlocked). From /proc/locks.
 */
export function engineOwner(dataPath: string): number | undefined {
  const status = join(dataPath, 'status');
  if (!existsSync(status)) return undefined;
  let locks: string;
  try {
    locks = readFileSync('/proc/locks', 'utf8');
  } catch {
    return undefined;
  }
  const { ino, dev } = statSync(status);
  // "1: FLOCK  ADVISORY  WRITE 20143 fe:00:10110032 0 EOF": pid, then major:minor (hex) and inode (decimal).
  for (const line of locks.split('\n')) {
    const f = line.trim().split(/\s+/);
    const [major, minor, inode] = (f[5] ?? '').split(':');
    if (inode !== String(ino)) continue;
    const M = Number.parseInt(major ?? '', 16);
    const m = Number.parseInt(minor ?? '', 16);
    // The kernel's encoding of a device number in st_dev.
    if (((m & 0xff) | (M << 8) | ((m & ~0xff) << 12)) !== dev) continue;
    const pid = Number(f[4]);
    if (pid !== process.pid) return pid;
  }
  return undefined;
}

/** What the repair would do to one table's logs. */
interface TableRepair {
  table: string;
  /** The newest log: the one cut back and appended to. */
  lastLog: string;
  /** Its length without a record cut short by the kill, if it ends in one. */
  cutTo?: number;
  /** Live records whose part no part directory covers. */
  ghosts: DroppedDedupRecord[];
}

/** Reads every table's logs and says what the repair would change; changes nothing. */
function planRepair(dataPath: string): TableRepair[] {
  const plan: TableRepair[] = [];
  const dirs = tableDirs(dataPath);
  if (dirs.length === 0) return plan;
  const root = realpathSync(dataPath); // the table directories are real paths too
  for (const dir of dirs) {
    const parts: PartName[] = [];
    for (const e of readdirSync(dir)) {
      const p = parsePartName(e);
      if (p && statSync(join(dir, e)).isDirectory()) parts.push(p);
    }
    const covered = (p: PartName) => parts.some((q) => q.partition === p.partition && q.min <= p.min && q.max >= p.max);
    const logsDir = join(dir, 'deduplication_logs');
    const logs = readdirSync(logsDir)
      .map((f) => ({ f, n: /^deduplication_log_(\d+)\.txt$/.exec(f)?.[1] }))
      .filter((x): x is { f: string; n: string } => x.n !== undefined)
      .sort((a, b) => Number(a.n) - Number(b.n));
    if (logs.length === 0) continue;
    // The engine's view: records applied in order, a DROP erasing an earlier ADD of the same block id.
    const live = new Map<string, string>();
    let recognised = true;
    const lastLog = join(logsDir, logs.at(-1)!.f);
    let cutTo: number | undefined;
    for (const { f } of logs) {
      const path = join(logsDir, f);
      let text = readFileSync(path, 'utf8');
      // A record cut short by the kill (no newline yet): its insert never returned, so its part was
      // never renamed. The engine would stop reading the file there; appending after it would corrupt it.
      if (path === lastLog && text.length > 0 && !text.endsWith('\n')) {
        text = text.slice(0, text.lastIndexOf('\n') + 1);
        cutTo = Buffer.byteLength(text);
      }
      const lines = text.split('\n');
      lines.pop();
      for (const line of lines) {
        const fields = line.split('\t');
        if (fields.length !== 3 || (fields[0] !== '1' && fields[0] !== '2')) {
          recognised = false;
          break;
        }
        if (fields[0] === '1') live.set(fields[2]!, fields[1]!);
        else live.delete(fields[2]!);
      }
      if (!recognised) break;
    }
    if (!recognised) continue;
    const table = relative(root, dir);
    const ghosts: DroppedDedupRecord[] = [];
    for (const [blockId, part] of live) {
      const p = parsePartName(part);
      if (p && !covered(p)) ghosts.push({ table, part, blockId });
    }
    if (ghosts.length > 0 || cutTo !== undefined) {
      plan.push({ table, lastLog, ...(cutTo !== undefined ? { cutTo } : {}), ghosts });
    }
  }
  return plan;
}

function applyRepair(plan: readonly TableRepair[]): DroppedDedupRecord[] {
  const dropped: DroppedDedupRecord[] = [];
  for (const { lastLog, cutTo, ghosts } of plan) {
    if (cutTo !== undefined) truncateSync(lastLog, cutTo);
    if (ghosts.length === 0) continue;
    const fd = openSync(lastLog, 'a');
    try {
      writeSync(fd, ghosts.map((g) => `2\t${g.part}\t${g.blockId}\n`).join(''));
    } finally {
      closeSync(fd);
    }
    dropped.push(...ghosts);
  }
  return dropped;
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

function untestedEngine(dataPath: string, engine: EngineVersion, plan: readonly TableRepair[]): ClickHouseSinkError {
  const ghosts = plan.flatMap((t) => t.ghosts);
  const cut = plan.filter((t) => t.cutTo !== undefined);
  const found: string[] = [];
  if (ghosts.length > 0) {
    const shown = ghosts.slice(0, 5).map((g) => `${g.table}: ${g.part}`);
    if (ghosts.length > shown.length) shown.push(`${ghosts.length - shown.length} more`);
    found.push(
      `${plural(ghosts.length, 'deduplication record', 'deduplication records')} of parts that are not on disk (${shown.join(', ')})`,
    );
  }
  if (cut.length > 0) {
    found.push(
      `${plural(cut.length, 'deduplication log', 'deduplication logs')} ending in a record cut short (${cut.map((t) => t.table).join(', ')})`,
    );
  }
  const tested = TESTED_ENGINES.map((t) => `chdb ${t.chdb} (engine ${t.engine})`).join(', ');
  return new ClickHouseSinkError({
    code: 'CH_DEDUP_UNTESTED_ENGINE',
    retriable: false,
    message:
      `embedded ClickHouse at ${dataPath} holds ${found.join(' and ')}, left by a crash during an insert; ` +
      `the repair that drops them before the engine opens is tested on ${tested} only, and this is chdb ${engine.chdb} ` +
      `(engine ${engine.engine}), whose logs may mean something else: a wrong drop would count a replay twice, so ` +
      `nothing was changed. Pin chdb to a tested version (npm install chdb@${TESTED_ENGINES.at(-1)!.chdb}); ` +
      `or set ${DEDUP_REPAIR_VARIABLE}=force to repair anyway (to make this version tested, see ` +
      `test/integration/clickhouse-dedup-repair.test.ts pass on it and add it to TESTED_ENGINES in ` +
      `pipelines/sinks/clickhouse/dedup-log.ts); ` +
      `or set ${DEDUP_REPAIR_VARIABLE}=off to open without the repair (the replay of those inserts is then dropped ` +
      `as a duplicate and their rows are lost)`,
  });
}

/**
 * Appends DROP records for the deduplication records of parts that never reached the disk, in every
 * table under `dataPath`, when `engine` is one the repair was tested on (or `mode` is `force`). On another
 * engine it changes nothing and throws CH_DEDUP_UNTESTED_ENGINE if there was anything to change; `off`
 * reads nothing. Call it only while no engine has the directory open (see engineOwner).
 * Returns what it dropped.
 * A log in a format it does not recognise is left untouched.
 */
export function dropUncommittedDedupRecords(
  dataPath: string,
  engine: EngineVersion,
  mode: DedupRepairMode = 'auto',
): DroppedDedupRecord[] {
  if (mode === 'off') return [];
  const plan = planRepair(dataPath);
  if (plan.length === 0) return [];
  if (mode !== 'force' && !isTestedEngine(engine)) throw untestedEngine(dataPath, engine, plan);
  return applyRepair(plan);
}
