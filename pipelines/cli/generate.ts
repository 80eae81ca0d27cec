// `pipelines generate [--check]`: writes the editor JSON Schemas and REFERENCE.md into topologies/ (with --check:
// exits 1 when they are not current). The reference lives only there; the README links to it.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generatedFiles } from '../reference/generate.ts';
import { parseOptions } from './args.ts';

export async function generate(args: string[]): Promise<number> {
  const { values } = parseOptions(args, { dir: { type: 'string' }, check: { type: 'boolean' } });
  const dir = resolve(values.dir ?? 'topologies');
  const check = values.check === true;
  let stale = 0;
  const files = Object.entries(generatedFiles()).map(([name, content]) => [join(dir, name), content] as const);
  for (const [path, content] of files) {
    let current = '';
    try {
      current = readFileSync(path, 'utf8');
    } catch {}
    if (current === content) continue;
    stale++;
    if (check) process.stdout.write(`${path}: not current (run: npx pipelines generate)\n`);
    else {
      writeFileSync(path, content);
      process.stdout.write(`wrote ${path}\n`);
    }
  }
  if (stale === 0) process.stdout.write(`up to date: ${files.map(([path]) => path).join(', ')}\n`);
  return check && stale > 0 ? 1 : 0;
}
