// `npm install -g .` from the checkout gives a `pipelines` command that works from any directory (a link to the
// checkout: Node strips TypeScript types outside node_modules only, so a tarball install could not run it).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { scratch, topology, writeTopology } from './topology/helpers.ts';

const root = resolve(__dirname, '..', '..');

test('npm install -g from the checkout: pipelines runs from another directory', () => {
  const prefix = mkdtempSync(join(tmpdir(), 'pipelines-global-'));
  try {
    const npm = spawnSync('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', root], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(npm.stderr).not.toMatch(/ERR!/);
    expect(npm.status).toBe(0);
    const elsewhere = scratch(); // a folder of the user's, with schemas beside the topology
    const file = writeTopology(topology(), 'mine.yaml', elsewhere);
    const run = (...args: string[]) =>
      spawnSync(join(prefix, 'bin', 'pipelines'), args, { cwd: elsewhere, encoding: 'utf8', timeout: 60_000 });
    const help = run('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/usage: pipelines <command>/);
    const validate = run('validate', 'mine.yaml');
    expect(validate.stdout).toContain('mine.yaml: ok');
    expect(validate.status).toBe(0);
    expect(file).toBe(join(elsewhere, 'mine.yaml'));
    rmSync(elsewhere, { recursive: true, force: true });
  } finally {
    rmSync(prefix, { recursive: true, force: true });
  }
});
