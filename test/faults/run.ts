// The fault run, on demand, on the local stack (bash deploy/local/stack up first):
//   node test/faults/run.ts [--orders 15000] [--seed 7] [--rate 3000] [--outage 30] [--kills 5] [--faults a,b] [--static]
// Prints a table (fault, lost, duplicated, dead-lettered, recovery) and writes it to test/faults/results/<date>.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { FAULTS, type Fault, faultRow, runFaults, TABLE_HEAD } from './suite.ts';

const { values } = parseArgs({
  options: {
    orders: { type: 'string', default: '15000' },
    seed: { type: 'string', default: '7' },
    rate: { type: 'string', default: '3000' },
    outage: { type: 'string', default: '30' },
    kills: { type: 'string', default: '5' },
    faults: { type: 'string', default: FAULTS.join(',') },
    static: { type: 'boolean', default: false },
  },
});
const faults = values.faults.split(',') as Fault[];
const unknown = faults.filter((f) => !FAULTS.includes(f));
if (unknown.length) {
  console.error(`unknown fault ${unknown.join(', ')}: choose from ${FAULTS.join(', ')}`);
  process.exit(2);
}
const o = {
  orders: Number(values.orders),
  seed: Number(values.seed),
  rate: Number(values.rate),
  outageSeconds: Number(values.outage),
  kills: Number(values.kills),
  faults,
  staticMembers: values.static,
  log: (line: string) => console.log(line),
};
const started = Date.now();
const results = await runFaults(o);
const events = results.reduce((n, r) => n + r.events, 0);
const date = new Date().toISOString().slice(0, 10);
const machine = `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`;
const text = [
  `# Fault run, ${date}`,
  '',
  `\`node test/faults/run.ts --orders ${o.orders} --seed ${o.seed} --rate ${o.rate} --outage ${o.outageSeconds} --kills ${o.kills}${o.staticMembers ? ' --static' : ''}\``,
  `on ${machine}: ${events} events in all, ${Math.round((Date.now() - started) / 60_000)} min.`,
  '',
  TABLE_HEAD,
  ...results.map(faultRow),
  '',
].join('\n');
mkdirSync('test/faults/results', { recursive: true });
writeFileSync(`test/faults/results/${date}${o.staticMembers ? '-static' : ''}.md`, text);
console.log(`\n${text}`);
process.exit(results.every((r) => r.lost === 0 && r.duplicated === 0) ? 0 : 1);
