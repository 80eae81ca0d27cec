// `pipelines graph <file> [--format tree|mermaid]`: the topology as a tree (terminal) or a Mermaid flowchart.

import { toMermaid, toTree } from '../compile/graph.ts';
import { loadTopology } from '../runtime/load.ts';
import { TopologyError } from '../topology/diagnostics.ts';
import { parseOptions, usage } from './args.ts';

export async function graph(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, { format: { type: 'string' }, mermaid: { type: 'boolean' } });
  const [file] = positionals;
  const format = values.format ?? (values.mermaid ? 'mermaid' : 'tree');
  if (!file || !['tree', 'mermaid'].includes(format)) throw usage('graph <topology.yaml> [--format tree|mermaid]');
  const { diagnostics, checked } = await loadTopology(file);
  if (!checked || diagnostics.some((d) => d.severity === 'error')) throw new TopologyError(diagnostics);
  process.stdout.write(format === 'mermaid' ? toMermaid(checked) : toTree(checked));
  return 0;
}
