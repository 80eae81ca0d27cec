// `pipelines validate <files…>`: every problem of every file, as path:line:col: message (hint).
import { dirname, resolve } from 'node:path';
import { deployLint } from '../deploy/lint.ts';
import { loadTopology } from '../runtime/load.ts';
import { checkTestFile } from '../testing/cases.ts';
import { formatDiagnostic } from '../topology/diagnostics.ts';
import { parseOptions, usage, wholeNumber } from './args.ts';

async function checkTests(file: string) {
  const r = checkTestFile(file);
  if (!r.spec) return r.diagnostics;
  const topology = resolve(dirname(file), r.spec.topology);
  return [...r.diagnostics, ...(await loadTopology(topology)).diagnostics.filter((d) => d.severity === 'error')];
}

export async function validate(args: string[]): Promise<number> {
  const { values, positionals: files } = parseOptions(args, {
    quiet: { type: 'boolean', short: 'q' },
    deploy: { type: 'boolean' },
    replicas: { type: 'string' },
  });
  const quiet = values.quiet === true;
  if (files.length === 0) throw usage('validate <topology.yaml>… [--deploy [--replicas N]]');
  // --deploy: also what would make the topology undeployable (pipelines/deploy/lint.ts), as warnings.
  const deploy = values.deploy === true;
  const replicas = values.replicas === undefined ? undefined : wholeNumber('replicas', values.replicas, 1);
  // Read as a worker reads it (and so checked): a server URL, or the embedded engine.
  const embeddedClickHouse =
    deploy && (await import('../sinks/clickhouse/connection.ts')).clickHouseConfigFromEnv().kind === 'embedded';
  let errors = 0;
  for (const file of files) {
    // A test file (x.test.yaml) is checked as one, with the topology it names.
    const isTest = /\.test\.ya?ml$/.test(file);
    const loaded = isTest ? undefined : await loadTopology(file);
    const diagnostics = loaded ? loaded.diagnostics : await checkTests(file);
    for (const d of diagnostics) {
      if (d.severity === 'error') errors++;
      if (d.severity === 'error' || !quiet) process.stdout.write(`${formatDiagnostic(d)}\n`);
    }
    if (deploy && loaded?.plan && !quiet) {
      const issues = deployLint(loaded.plan.topology, {
        ...(replicas ? { replicas } : {}),
        embeddedClickHouse,
        hasState: loaded.plan.hasState,
      });
      for (const i of issues)
        process.stdout.write(`${file}: ${i.severity}: ${i.message} (${i.hint}) at ${i.path} [${i.code}]\n`);
    }
    if (!diagnostics.some((d) => d.severity === 'error')) process.stdout.write(`${file}: ok\n`);
  }
  if (errors > 0) process.stdout.write(`${errors} error(s)\n`);
  return errors > 0 ? 1 : 0;
}
