// Generated files are current: the editor JSON Schemas and REFERENCE.md are regenerated from the specs and
// compared; the diagnostics catalogue and the reference agree; the reference lives in REFERENCE.md only.
import { readFileSync } from 'node:fs';
import { sinks, steps } from '../../../pipelines/compile/kinds.ts';
import { generatedFiles } from '../../../pipelines/reference/generate.ts';
import { catalogue } from '../../../pipelines/topology/diagnostics.ts';
import { TOPOLOGIES } from './helpers.ts';

describe('generated files', () => {
  const files = generatedFiles();
  it.each(Object.keys(files))('topologies/%s is current (run `npx pipelines generate`)', (name) => {
    expect(readFileSync(`${TOPOLOGIES}/${name}`, 'utf8')).toBe(files[name]);
  });

  it('the README links to the reference and carries no copy of it', () => {
    const readme = readFileSync(`${TOPOLOGIES}/../README.md`, 'utf8');
    expect(readme).toContain('](topologies/REFERENCE.md)');
    const headings = files['REFERENCE.md']!.split('\n').filter((l) => /^#{2,} `/.test(l));
    expect(headings.length).toBeGreaterThan(10);
    const copied = headings.filter((h) =>
      readme.split('\n').some((l) => l.replace(/^#+/, '') === h.replace(/^#+/, '')),
    );
    expect(copied).toEqual([]);
  });

  it('the JSON Schema knows every step kind and sink kind, and rejects unknown keys', () => {
    const schema = JSON.parse(files['topology.schema.json']!);
    const text = JSON.stringify(schema);
    for (const s of [...steps, ...sinks]) expect(text).toContain(`"${s.kind}"`);
    expect(schema.additionalProperties).toBe(false);
  });

  it('every field in the reference has a description, and every map with fields has its own table', () => {
    const lines = files['REFERENCE.md']!.split('\n');
    const undocumented: string[] = [];
    const dangling: string[] = [];
    let table = '';
    for (const [i, line] of lines.entries()) {
      const label = /^`([^`]+)`(?:, form \d+ of \d+)?:$/.exec(line);
      if (label) table = `${label[1]}.`;
      else if (line.startsWith('### ')) table = '';
      const row = /^\| `([^`]+)` \| (.*) \| (.*) \| (.*) \|$/.exec(line);
      if (!row) continue;
      const [, name, type, , description] = row;
      if (description!.trim() === '') undocumented.push(`${table}${name}`);
      if (type!.includes('fields below') && !lines.slice(i).some((l) => l.startsWith(`\`${table}${name}\``)))
        dangling.push(`${table}${name}`);
    }
    expect({ undocumented, dangling }).toEqual({ undocumented: [], dangling: [] });
    expect(files['REFERENCE.md']).not.toContain('(below)');
  });

  it('the reference documents every step, every sink and every diagnostic code', () => {
    const ref = files['REFERENCE.md']!;
    for (const s of steps) expect(ref).toContain(`### \`${s.kind}\``);
    for (const s of sinks) expect(ref).toContain(`### \`${s.kind}\``);
    for (const code of Object.keys(catalogue)) expect(ref).toContain(`| \`${code}\` |`);
  });
});
