// `pipelines schemas check <files…>`: whether each Avro schema a topology writes (kafka sinks) or reads (source,
// tables) can follow its previous version: the same file at a git revision (offline, avsc's analysis), and the
// registry subject (its level, its own test, avsc's reasons). Exit 1 when one cannot: a CI gate on a change.
import { spawnSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import {
  compareSchemas,
  parseAvroSchema,
  RegistryClient,
  type SubjectStrategy,
  subjectName,
  testSchema,
} from '../codec/index.ts';
import type { CheckedTopology } from '../compile/checked.ts';
import { checkFile } from '../compile/compile.ts';
import { connectionsFrom } from '../kafka/connection.ts';
import { loadAvsc } from '../topology/avro.ts';
import { hasErrors, TopologyError } from '../topology/diagnostics.ts';
import { parseOptions, usage, usageError, userError } from './args.ts';

export const HELP =
  'schemas check <topology.yaml>… [--against <git-rev>] [--level BACKWARD|FORWARD|FULL] [--registry <url>]\n' +
  '  --against: the revision whose version of each schema file the new one must follow (default HEAD)\n' +
  '  --level: BACKWARD (default: the new schema reads data written with the old), FORWARD (the old reads the new), FULL\n' +
  "  --registry (or PIPELINES_REGISTRY_URL): also test each schema against its subject, at the subject's level";

const LEVELS = ['BACKWARD', 'FORWARD', 'FULL'] as const;

/** One schema of a topology and the subject it lives under. */
export interface TopologySchema {
  /** As written in the topology (relative to it). */
  file: string;
  path: string;
  subject: string;
}

/** The Avro schemas a topology writes (kafka sinks, saga messages included) and reads (source, tables). */
export function schemasOf(checked: CheckedTopology): TopologySchema[] {
  const out = new Map<string, TopologySchema>();
  const add = (file: string, strategy: SubjectStrategy, topic: string) => {
    const path = resolve(checked.dir, file);
    const recordName = loadAvsc(path).name;
    const subject = subjectName(strategy, { topic, recordName, kind: 'value' });
    out.set(`${subject} ${path}`, { file, path, subject });
  };
  for (const s of checked.sinks) {
    const c = s.config as { topic?: string; value?: { format: string; schema?: string; subjects: SubjectStrategy } };
    if (s.kind === 'kafka' && c.value?.format === 'avro' && c.value.schema)
      add(c.value.schema, c.value.subjects, c.topic!);
  }
  const { source, sources, tables } = checked.topology.spec;
  for (const sc of [source, ...Object.values(sources)])
    if (sc.value.format === 'avro') for (const f of sc.value.schemas) add(f, sc.value.subjects, sc.topic);
  for (const t of Object.values(tables ?? {})) if (t.schema) add(t.schema, 'TopicName', t.topic);
  return [...out.values()];
}

function git(args: string[], cwd: string) {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr ?? r.error?.message ?? '').trim() };
}

/** The previous version of a file at `rev`; undefined when the file is new since then. */
function fileAt(rev: string, path: string): string | undefined {
  const real = realpathSync(path);
  const root = git(['rev-parse', '--show-toplevel'], dirname(real));
  if (!root.ok) throw userError(`${path} is not in a git repository (${root.err}): nothing to compare --against`);
  if (!git(['rev-parse', '--verify', '--quiet', `${rev}^{commit}`], root.out.trim()).ok)
    throw usageError(`--against: '${rev}' is not a revision of ${root.out.trim()}`);
  const shown = git(['show', `${rev}:${relative(root.out.trim(), real)}`], root.out.trim());
  return shown.ok ? shown.out : undefined;
}

export async function schemas(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, {
    against: { type: 'string', default: 'HEAD' },
    level: { type: 'string', default: 'BACKWARD' },
    registry: { type: 'string' },
  });
  const [action, ...files] = positionals;
  if (action !== 'check' || files.length === 0) throw usage(HELP);
  const level = LEVELS.find((l) => l === values.level.toUpperCase());
  if (!level) throw usageError(`--level: ${LEVELS.join(', ')}, not '${values.level}'`);
  const rev = values.against;
  const url = values.registry ?? process.env.PIPELINES_REGISTRY_URL;
  const registry = url ? new RegistryClient(connectionsFrom(process.env, { registry: url }).registry) : undefined;
  let incompatible = 0;
  const say = (line: string, reasons: readonly string[] = []) => {
    process.stdout.write(`${line}\n${reasons.map((r) => `    ${r}\n`).join('')}`);
  };
  for (const file of files) {
    const { diagnostics, checked } = checkFile(file);
    if (!checked || hasErrors(diagnostics)) throw new TopologyError(diagnostics);
    for (const s of schemasOf(checked)) {
      const at = `${file}: ${s.subject} (${s.file})`;
      const text = readFileSync(s.path, 'utf8');
      const candidate = parseAvroSchema(text, s.file);
      const old = fileAt(rev, s.path);
      if (old === undefined) say(`${at}: new since ${rev}, nothing to compare`);
      else {
        let reasons: string[];
        try {
          reasons = compareSchemas(candidate, parseAvroSchema(old), level, `the schema at ${rev}`);
        } catch {
          reasons = [`the schema at ${rev} is not a valid Avro schema`];
        }
        if (reasons.length > 0) incompatible++;
        say(`${at}: ${reasons.length > 0 ? 'INCOMPATIBLE' : 'compatible'} with ${rev} [${level}]`, reasons);
      }
      if (!registry) continue;
      if ((await registry.getVersions(s.subject)).length === 0) {
        say(`${at}: new in the registry, nothing to compare`);
        continue;
      }
      const verdict = await testSchema(registry, s.subject, text);
      const mode = `[${verdict.mode.level}${verdict.mode.source === 'global' ? ', global' : ''}]`;
      const registered = verdict.existing ? ` (registered as version ${verdict.existing.version})` : '';
      if (verdict.incompatible) incompatible++;
      say(
        `${at}: ${verdict.incompatible ? 'INCOMPATIBLE' : 'compatible'} with the registry ${mode}${registered}`,
        verdict.incompatible?.length === 0 ? ['the registry refuses it without saying why'] : verdict.incompatible,
      );
    }
  }
  if (incompatible > 0) process.stdout.write(`${incompatible} incompatible schema version(s)\n`);
  return incompatible > 0 ? 1 : 0;
}
