// Generated files are current: the editor JSON Schemas and REFERENCE.md are regenerated from the specs and
// compared; the diagnostics catalogue and the reference agree.
import { readFileSync } from 'node:fs';
import { sinks, steps } from '../../../pipelines/compile/kinds.ts';
import { generatedFiles, readmeWithReference } from '../../../pipelines/reference/generate.ts';
import { catalogue } from '../../../pipelines/topology/diagnostics.ts';
import { TOPOLOGIES } from './helpers.ts';

describe('generated files', () => {
  const files = generatedFiles();
  it.each(Object.keys(files))('topologies/%s is current (run `npx pipelines generate`)', (name) => {
    expect(readFileSync(`${TOPOLOGIES}/${name}`, 'utf8')).toBe(files[name]);
  });

  it('the README carries the same reference (run `npx pipelines generate`)', () => {
    const readme = readFileSync(`${TOPOLOGIES}/../README.md`, 'utf8');
    expect(readme).toBe(readmeWithReference(readme, files['REFERENCE.md']));
    expect(readme).toContain('## Writing a topology');
  });

  it('the JSON Schema knows every step kind and sink kind, and rejects unknown keys', () => {
    const schema = JSON.parse(files['topology.schema.json']!);
    const text = JSON.stringify(schema);
    for (const s of [...steps, ...sinks]) expect(text).toContain(`"${s.kind}"`);
    expect(schema.additionalProperties).toBe(false);
  });

  it('the reference documents every step, every sink and every diagnostic code', () => {
    const ref = files['REFERENCE.md']!;
    for (const s of steps) expect(ref).toContain(`### \`${s.kind}\``);
    for (const s of sinks) expect(ref).toContain(`### \`${s.kind}\``);
    for (const code of Object.keys(catalogue)) expect(ref).toContain(`| \`${code}\` |`);
  });
});
