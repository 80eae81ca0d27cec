// `pipelines schemas check` offline, as CI runs it: in a git repository of its own, the schema a topology writes
// against its version at a revision (BACKWARD by default, --level FORWARD or FULL), exit 1 with the field named
// when the new version cannot follow the old.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  checkSchemas as check,
  commit,
  field,
  schemaRepo as repo,
  topologyFor,
  V1,
  writeSchema,
} from '../fixtures/schema-repo.ts';

const schema = (dir: string, fields: unknown[]) => writeSchema(dir, fields);
const TOPOLOGY = topologyFor('out');

test.each([
  ['unchanged', V1, []],
  ['a new field with a default', [...V1, field('channel', ['null', 'string'], { default: null })], []],
  ['a field removed', [field('orderId', 'string')], []],
  ['a long widened to a double', [field('orderId', 'string'), field('n', 'double')], []],
])('compatible with HEAD: %s', (_, v2, args: string[]) => {
  const dir = repo();
  schema(dir, v2);
  const r = check(dir, ...args);
  expect(r).toEqual({
    code: 0,
    err: '',
    out: 't.yaml: out-value (schemas/Out.avsc): compatible with HEAD [BACKWARD]\n',
  });
});

test.each([
  ['a new field without a default', [...V1, field('channel', 'string')], /channel/],
  ['a type changed', [field('orderId', 'string'), field('n', 'string')], / at n$/m],
  [
    'a new field without a default before a changed one: that field, not the next',
    [field('orderId', 'string'), field('channel', 'string'), field('n', 'string')],
    /default-less x\.Out\.channel$/m,
  ],
])('incompatible with HEAD: %s; exit 1, the field named', (_, v2, named) => {
  const dir = repo();
  schema(dir, v2);
  const r = check(dir);
  expect(r.code).toBe(1);
  expect(r.err).toBe('');
  const [line, reason, total] = r.out.trimEnd().split('\n');
  expect(line).toBe('t.yaml: out-value (schemas/Out.avsc): INCOMPATIBLE with HEAD [BACKWARD]');
  expect(reason).toMatch(/^ {4}new schema cannot read data written with the schema at HEAD: /);
  expect(reason).toMatch(named);
  expect(total).toBe('1 incompatible schema version(s)');
});

test('--level FORWARD: old readers must read the new data, so a field they need cannot go; FULL checks both', () => {
  const dir = repo();
  schema(dir, [field('orderId', 'string')]);
  expect(check(dir).code).toBe(0);
  for (const level of ['FORWARD', 'full']) {
    const r = check(dir, '--level', level);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      new RegExp(
        `INCOMPATIBLE with HEAD \\[${level.toUpperCase()}\\]\n {4}the schema at HEAD cannot read data written with the new schema: .*\\bn\\b`,
      ),
    );
  }
});

test('--against an older revision; a schema file new since the revision has nothing to compare', () => {
  const dir = repo();
  schema(dir, [field('orderId', 'string'), field('n', 'string')]);
  commit(dir, 'v2: n is a string');
  expect(check(dir).code).toBe(0);
  expect(check(dir, '--against', 'HEAD~1').out).toMatch(/INCOMPATIBLE with HEAD~1 \[BACKWARD\]/);
  writeFileSync(join(dir, 't.yaml'), TOPOLOGY.replace('Out.avsc', 'Out2.avsc'));
  writeSchema(dir, V1, 'Out2.avsc', 'Out2');
  expect(check(dir)).toEqual({
    code: 0,
    err: '',
    out: 't.yaml: out-value (schemas/Out2.avsc): new since HEAD, nothing to compare\n',
  });
});

test('a revision that does not exist, or a level it does not know: usage errors (exit 2)', () => {
  const dir = repo();
  expect(check(dir, '--against', 'no-such-rev')).toMatchObject({
    code: 2,
    err: expect.stringMatching(/^pipelines schemas: error: --against: 'no-such-rev' is not a revision of /),
  });
  expect(check(dir, '--level', 'BACKWARD_TRANSITIVE')).toMatchObject({
    code: 2,
    err: "pipelines schemas: error: --level: BACKWARD, FORWARD, FULL, not 'BACKWARD_TRANSITIVE'\n",
  });
});
