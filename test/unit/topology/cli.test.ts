// The `pipelines` subcommands as a user runs them: exit codes, located messages, no stack traces.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { placed, scratch, TOPOLOGIES, topology, writeTopology } from './helpers.ts';

const ROOT = resolve(__dirname, '../../..');
function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, 'pipelines/cli/main.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('pipelines CLI', () => {
  it('keeps compiled code in the compile cache, so that the next start skips compiling and stripping TypeScript', () => {
    const dir = mkdtempSync(join(tmpdir(), 'compile-cache-'));
    const file = join(TOPOLOGIES, 'order-forward.yaml');
    const r = spawnSync(process.execPath, [join(ROOT, 'pipelines/cli/main.ts'), 'validate', file], {
      cwd: ROOT,
      encoding: 'utf8',
      // Not NODE_COMPILE_CACHE, which turns the cache on by itself: its default place, under the temporary folder.
      env: { ...process.env, NODE_COMPILE_CACHE: '', TMPDIR: dir },
    });
    expect(r.status).toBe(0);
    const [version] = readdirSync(join(dir, 'node-compile-cache'));
    // Every module loaded has its entry: the command line, the compiler, the runtime (well over a hundred files).
    expect(readdirSync(join(dir, 'node-compile-cache', version!)).length).toBeGreaterThan(100);
  });

  it('--help and -h on every subcommand: its usage on stdout, exit 0, nothing run', () => {
    const { commands } =
      require('../../../pipelines/cli/commands.ts') as typeof import('../../../pipelines/cli/commands.ts');
    for (const name of Object.keys(commands)) {
      for (const flag of ['--help', '-h']) {
        const r = cli(name, 'x.yaml', flag);
        expect({ name, flag, code: r.code, err: r.err }).toEqual({ name, flag, code: 0, err: '' });
        expect(r.out.startsWith(`usage: pipelines ${name}`)).toBe(true);
      }
    }
  });

  it('an unknown option is refused by every subcommand, with the nearest one; exit 2, one line', () => {
    const { commands } =
      require('../../../pipelines/cli/commands.ts') as typeof import('../../../pipelines/cli/commands.ts');
    for (const name of Object.keys(commands)) {
      const r = cli(name, 'x.yaml', '--no-such-option');
      expect({ name, code: r.code }).toEqual({ name, code: 2 });
      expect(r.err).toMatch(new RegExp(`^pipelines ${name}: error: unknown option '--no-such-option'`));
      expect(r.err.trim().split('\n')).toHaveLength(1);
    }
    for (const [args, near] of [
      [['validate', 'x.yaml', '--quite'], '--quiet'],
      [['run', 'x.yaml', '--dry-run', '--inptu', 'e.jsonl'], '--input'],
      [['run', 'x.yaml', '--until-caught'], '--until-caught-up'],
      [['replay', 'x.yaml', '--intto', 'v2'], '--into'],
      [['deploy', 'render', 'x.yaml', '--namspace', 'n'], '--namespace'],
    ] as const) {
      const r = cli(...args);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`did you mean '${near}'?`);
    }
  });

  it('a malformed option value or a missing argument is a usage error too (exit 2); no stack', () => {
    for (const [args, text] of [
      [['demo', '--orders', 'many'], '--orders: a whole number'],
      [['validate'], 'usage: pipelines validate'],
      [['validate', 'x.yaml', '--replicas', 'two'], '--replicas: a whole number'],
      [['deploy', 'render', 'x.yaml', '--out', 'd', '--strimzi-api', 'v3'], '--strimzi-api must be v1 or v1beta2'],
    ] as const) {
      const r = cli(...args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.err).toContain(`pipelines ${args[0]}: error: ${text}`);
      expect(r.err).not.toMatch(/internal error|\n\s+at /);
    }
  });

  it('validate: exit 0 for the examples', () => {
    const r = cli('validate', `${TOPOLOGIES}/order-status.yaml`, `${TOPOLOGIES}/order-status.test.yaml`);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });

  it('validate: exit 1 and every problem as path:line:col: message (hint)', () => {
    const file = writeTopology(topology({ steps: '    - filtr: "true"\n    - map: { a: event.data.orderId }' }));
    const r = cli('validate', file);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/x\.yaml:12:7: unknown step kind 'filtr' \(did you mean 'filter'\?\) \[step-unknown-kind\]/);
    expect(r.err).not.toMatch(/ at /);
  });

  it('validate: a missing file is a located message, not a stack', () => {
    const r = cli('validate', 'nope.yaml');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/nope\.yaml:1:1: cannot read file: ENOENT \[file-not-found\]/);
    expect(r.err).toBe('');
  });

  it('graph: a tree, and a Mermaid flowchart', () => {
    const tree = cli('graph', `${TOPOLOGIES}/order-analytics.yaml`);
    expect(tree.code).toBe(0);
    expect(tree.out).toMatch(/└─ ▶ clickhouse:revenue_by_product_1m/);
    const mermaid = cli('graph', `${TOPOLOGIES}/order-analytics.yaml`, '--format', 'mermaid');
    expect(mermaid.out.startsWith('flowchart LR\n')).toBe(true);
    expect(mermaid.out).toMatch(/-\.->/);
  });

  it('graph on a bad file: the problems, no stack', () => {
    const r = cli('graph', writeTopology('kind: [', 'bad.yaml'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/pipelines graph: error: 1 problem\(s\):\n.*bad\.yaml:1:/);
    expect(r.err).not.toMatch(/internal error/);
  });

  it('test: reports each case and exits non-zero on a failure', () => {
    const ok = cli('test', `${TOPOLOGIES}/order-status.test.yaml`);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/✓ placed, paid, shipped/);
    const dir = scratch();
    writeFileSync(join(dir, 'order-status.yaml'), readFileSync(`${TOPOLOGIES}/order-status.yaml`, 'utf8'));
    writeFileSync(
      join(dir, 'order-status.test.yaml'),
      `topology: ./order-status.yaml\ncases:\n  - name: wrong on purpose\n    input: [{ value: ${JSON.stringify(placed())} }]\n    expect: { sinks: { 'clickhouse:order_summary': [{ status: SHIPPED }] } }\n`,
    );
    const bad = cli('test', dir);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(
      /✗ wrong on purpose[\s\S]*status: expected "SHIPPED", got "PLACED"[\s\S]*0 passed, 1 failed/,
    );
  });

  it('run --dry-run: what each sink would receive', () => {
    const dir = scratch();
    const input = join(dir, 'events.jsonl');
    writeFileSync(
      input,
      `${JSON.stringify(placed())}\n${JSON.stringify({ eventId: 'e2', eventType: 'OrderCancelled', timestamp: 61_000, data: { orderId: 'o1', reason: 'r' } })}\n`,
    );
    const r = cli('run', `${TOPOLOGIES}/order-status.yaml`, '--dry-run', '--input', input);
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('clickhouse:order_summary\t'))).toHaveLength(2);
    expect(lines).toContainEqual(
      expect.stringMatching(/^kafka:orders.status\t\{"key":"o1","value":\{"orderId":"o1","status":"CANCELLED"/),
    );
  });

  it('run --dry-run forgives bad lines: each a dead letter of its own line number, the rest processed', () => {
    const input = join(scratch(), 'events.jsonl');
    const unknownType = { eventId: 'e9', eventType: 'OrderTeleported', timestamp: 1, data: { orderId: 'o9' } };
    writeFileSync(
      input,
      [
        JSON.stringify(placed({ eventId: 'a' }, { orderId: 'o1' })),
        JSON.stringify(placed({ eventId: 'b' }, { orderId: 'o2', totalAmount: 'x' })),
        '{ not json',
        JSON.stringify(unknownType),
        JSON.stringify(placed({ eventId: 'c' }, { orderId: 'o3' })),
      ].join('\n'),
    );
    const r = cli('run', `${TOPOLOGIES}/order-status.yaml`, '--dry-run', '--input', input);
    expect(r.code).toBe(0);
    const out = r.out.trim().split('\n');
    const summaries = out.filter((l) => l.startsWith('clickhouse:order_summary\t'));
    expect(summaries.map((l) => JSON.parse(l.split('\t')[1]!).order_id)).toEqual(['o1', 'o3']);
    const dead = out.filter((l) => l.startsWith('dead-letter\t')).map((l) => JSON.parse(l.split('\t')[1]!));
    expect(dead.map((d) => [d.line.replace(/^.*:/, ''), d.errorClass])).toEqual([
      ['2', 'INPUT_INVALID'],
      ['3', 'NOT_JSON'],
      ['4', 'INPUT_INVALID'],
    ]);
    expect(dead[0].message).toMatch(/data\.totalAmount: expected double/);
    expect(r.err).toMatch(/dry run: 2 event\(s\) processed, 3 bad input line\(s\)/);
  });

  it('run --dry-run lists the records a table wait still holds at the end, by step, key and input line', () => {
    const dir = scratch();
    const input = join(dir, 'events.jsonl');
    const tables = join(dir, 'tables.jsonl');
    const order = (id: string, customerId: string) =>
      JSON.stringify(
        placed({ eventId: id }, { orderId: id, customerId, items: [{ productId: 'p1', quantity: 1, price: 1 }] }),
      );
    // The line that is not JSON moves the lines away from the offsets: the held record still names its own line.
    writeFileSync(input, [order('o1', 'c1'), '{ not json', order('o2', 'c8')].join('\n'));
    writeFileSync(
      tables,
      `${JSON.stringify({ table: 'customers', row: { customerId: 'c1', name: 'Ada', segment: 'smb', country: 'FR' } })}\n`,
    );
    const r = cli('run', `${TOPOLOGIES}/order-enrichment.yaml`, '--dry-run', '--input', input, '--tables', tables);
    expect(r.code).toBe(0);
    const out = r.out.trim().split('\n');
    expect(out.filter((l) => l.startsWith('kafka:orders.enriched\t'))).toHaveLength(1);
    const held = out.filter((l) => l.startsWith('held\t')).map((l) => JSON.parse(l.split('\t')[1]!));
    expect(held).toEqual([{ step: 'customer', key: 'c8', line: `${input}:3` }]);
    // The end of input then ends the wait: afterWait (deadLetter) applies.
    expect(out.findIndex((l) => l.startsWith('held\t'))).toBeLessThan(
      out.findIndex((l) => l.includes('"errorClass":"MissingTableRow"')),
    );
    expect(r.err).toMatch(/2 dead letter\(s\), 1 record\(s\) held by a table wait at the end/);
  });

  it('generate --check: the generated files are current', () => {
    expect(cli('generate', '--check').code).toBe(0);
  });
});
