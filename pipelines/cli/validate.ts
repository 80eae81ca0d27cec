// `pipelines validate <files…>`: every problem of every file, as path:line:col: message (hint).
import { dirname, resolve } from 'node:path';
import { loadTopology } from '../runtime/load.ts';
import { checkTestFile } from '../testing/cases.ts';
import { formatDiagnostic } from '../topology/diagnostics.ts';
import { usage } from './args.ts';

async function checkTests(file: string) {
  const r = checkTestFile(file);
  if (!r.spec) return r.diagnostics;
  const topology = resolve(dirname(file), r.spec.topology);
  return [...r.diagnostics, ...(await loadTopology(topology)).diagnostics.filter((d) => d.severity === 'error')];
}

export async function validate(args: string[]): Promise<number> {
  const files = args.filter((a) => !a.startsWith('-'));
  const quiet = args.includes('--quiet') || args.includes('-q');
  if (files.length === 0) throw usage('validate <topology.yaml>…');
  let errors = 0;
  for (const file of files) {
    // A test file (x.test.yaml) is checked as one, with the topology it names.
    const diagnostics = /\.test\.ya?ml$/.test(file) ? await checkTests(file) : (await loadTopology(file)).diagnostics;
    for (const d of diagnostics) {
      if (d.severity === 'error') errors++;
      if (d.severity === 'error' || !quiet) process.stdout.write(`${formatDiagnostic(d)}\n`);
    }
    if (!diagnostics.some((d) => d.severity === 'error')) process.stdout.write(`${file}: ok\n`);
  }
  if (errors > 0) process.stdout.write(`${errors} error(s)\n`);
  return errors > 0 ? 1 : 0;
}
