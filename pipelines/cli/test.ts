// `pipelines test <file|dir>…`: runs the declarative test cases beside the topologies, like a test runner.
import { existsSync } from 'node:fs';
import { findTestFiles, runTestFile } from '../testing/cases.ts';
import { formatDiagnostic } from '../topology/diagnostics.ts';
import { parseOptions, usage, userError } from './args.ts';

export async function test(args: string[]): Promise<number> {
  const paths = parseOptions(args, {}).positionals;
  if (paths.length === 0) throw usage('test <file.test.yaml | folder>…');
  const files: string[] = [];
  for (const p of paths) {
    if (!existsSync(p)) throw userError(`no such file or folder: ${p}`);
    files.push(...findTestFiles(p));
  }
  if (files.length === 0) throw userError(`no *.test.yaml files under ${paths.join(', ')}`);
  let passed = 0;
  let failed = 0;
  for (const f of files) {
    const r = await runTestFile(f);
    process.stdout.write(`${r.file}\n`);
    for (const d of r.diagnostics.filter((x) => x.severity === 'error')) {
      process.stdout.write(`  ${formatDiagnostic(d)}\n`);
      failed++;
    }
    for (const c of r.cases) {
      process.stdout.write(`  ${c.passed ? '✓' : '✗'} ${c.name} (${c.ms.toFixed(0)} ms)\n`);
      for (const msg of c.failures) process.stdout.write(`      ${msg}\n`);
      if (c.passed) passed++;
      else failed++;
    }
  }
  process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
  return failed > 0 ? 1 : 0;
}
