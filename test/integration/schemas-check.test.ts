// `pipelines schemas check --registry` on the real registry (Apicurio 3.3.3, ccompat v7): a subject of its own per
// run, v1 registered under a BACKWARD rule; a compatible v2 passes, an incompatible one is refused with the
// registry's verdict and avsc's reason, and a subject the registry does not have is new.
import { randomUUID } from 'node:crypto';
import { RegistryClient } from '../../pipelines/codec/index.ts';
import { checkSchemas, commit, field, schemaRepo, V1, writeSchema } from '../fixtures/schema-repo.ts';
import { localStack } from './stack.ts';

jest.setTimeout(60_000);

const url = localStack().registryUrl;
const registry = new RegistryClient({ url });
const run = randomUUID().slice(0, 8);

/** A repository whose topology writes to a topic of its own, its v1 registered (BACKWARD) when `register`. */
async function setup(name: string, register = true) {
  const topic = `schemas-check-it-${run}-${name}`;
  const dir = schemaRepo(topic);
  const subject = `${topic}-value`;
  if (register) {
    await registry.register(subject, JSON.stringify({ type: 'record', name: 'Out', namespace: 'x', fields: V1 }));
    await registry.setSubjectCompatibility(subject, 'BACKWARD');
  }
  return { dir, subject };
}

/** v2 committed, so that the offline line passes and the registry's decides. */
function version2(dir: string, fields: unknown[]) {
  writeSchema(dir, fields);
  commit(dir, 'v2');
}

test('v1 as registered: compatible, with its version', async () => {
  const { dir, subject } = await setup('same');
  const r = checkSchemas(dir, '--registry', url);
  expect(r.err).toBe('');
  expect(r.out).toContain(
    `t.yaml: ${subject} (schemas/Out.avsc): compatible with the registry [BACKWARD] (registered as version 1)\n`,
  );
  expect(r.code).toBe(0);
});

test('a compatible v2 (a new field with a default) passes the subject level', async () => {
  const { dir, subject } = await setup('compatible');
  version2(dir, [...V1, field('channel', ['null', 'string'], { default: null })]);
  const r = checkSchemas(dir, '--registry', url);
  expect(r).toEqual({
    code: 0,
    err: '',
    out:
      `t.yaml: ${subject} (schemas/Out.avsc): compatible with HEAD [BACKWARD]\n` +
      `t.yaml: ${subject} (schemas/Out.avsc): compatible with the registry [BACKWARD]\n`,
  });
});

test('an incompatible v2 (a new field without a default): exit 1, the registry and avsc say why', async () => {
  const { dir, subject } = await setup('incompatible');
  version2(dir, [...V1, field('channel', 'string')]);
  const r = checkSchemas(dir, '--registry', url);
  expect(r.code).toBe(1);
  const lines = r.out.trimEnd().split('\n');
  expect(lines[0]).toBe(`t.yaml: ${subject} (schemas/Out.avsc): compatible with HEAD [BACKWARD]`);
  expect(lines[1]).toBe(`t.yaml: ${subject} (schemas/Out.avsc): INCOMPATIBLE with the registry [BACKWARD]`);
  expect(lines.slice(2, -1)).toContainEqual(
    expect.stringMatching(/^ {4}new schema cannot read data written with version 1: .*channel/),
  );
  expect(lines.at(-1)).toBe('1 incompatible schema version(s)');
});

test('a subject the registry does not have is new: nothing to compare', async () => {
  const { dir, subject } = await setup('new', false);
  const r = checkSchemas(dir, '--registry', url);
  expect(r.out).toContain(`t.yaml: ${subject} (schemas/Out.avsc): new in the registry, nothing to compare\n`);
  expect(r.code).toBe(0);
});
