// A topology as a picture: a Mermaid flowchart (for docs and PRs) and a tree (for a terminal).
import type { CheckedTopology } from './checked.ts';
import { repartitionTopic } from './stages.ts';

interface GNode {
  id: string;
  label: string;
  detail: string;
  kind: 'source' | 'step' | 'sink';
  children: GNode[];
  tables: string[];
}

/** The sources as trees of what reads them; a step reading a second flow (join, merge) is linked from it too. */
function build(c: CheckedTopology): { roots: GNode[]; links: Array<[string, string]> } {
  const src = c.topology.spec.source;
  const named = [...c.sources.values()].flatMap((s) => s.schemas);
  const source = (id: string, topic: string, format: string, schemas: typeof c.schemas): GNode => {
    const types = schemas.map((s) => s.shortName).filter(Boolean);
    return {
      id,
      label: `source ${id === 'source' ? '' : `${id}: `}${topic}`,
      detail: `${format}${types.length ? `: ${types.join(', ')}` : ''}`,
      kind: 'source',
      children: [],
      tables: [],
    };
  };
  const roots = [
    source(
      'source',
      src.topic,
      src.value.format,
      c.schemas.filter((s) => !named.includes(s)),
    ),
    ...[...c.sources].map(([name, s]) => {
      const sc = c.topology.spec.sources[name]!;
      return source(name, sc.topic, sc.value.format, s.schemas);
    }),
  ];
  const nodes = new Map<string, GNode>(roots.map((r) => [r.id, r]));
  const links: Array<[string, string]> = [];
  for (const s of c.steps) {
    const node: GNode = {
      id: s.id,
      label: `${s.kind} ${s.id}`,
      // Where a boundary step sends the records between the workers (named from the group; `--group` renames it).
      detail: s.spec.partitionKeys
        ? `${s.spec.describe(s.config)}, via topic ${repartitionTopic(src.group, s.id)}`
        : (s.description ?? s.spec.describe(s.config)),
      kind: 'step',
      children: [],
      tables: s.spec.tables?.(s.config) ?? [],
    };
    nodes.get(s.from)?.children.push(node);
    nodes.set(s.id, node);
    for (const input of s.inputs ?? []) {
      links.push([input, s.id]);
      nodes.get(input)?.children.push({
        id: `${input}->${s.id}`,
        label: `→ ${s.kind} ${s.id}`,
        detail: 'read there as its other flow',
        kind: 'step',
        children: [],
        tables: [],
      });
    }
  }
  for (const k of c.sinks) {
    const node: GNode = {
      id: k.id,
      label: k.id,
      detail: k.spec.describe(k.config),
      kind: 'sink',
      children: [],
      tables: [],
    };
    nodes.get(k.from)?.children.push(node);
  }
  return { roots, links };
}

const esc = (s: string) => s.replace(/"/g, '#quot;').replace(/[<>]/g, (m) => (m === '<' ? '#lt;' : '#gt;'));

export function toMermaid(c: CheckedTopology): string {
  const { roots, links } = build(c);
  const lines = ['flowchart LR'];
  const ids = new Map<string, string>();
  const nid = (id: string) => {
    if (!ids.has(id)) ids.set(id, `n${ids.size}`);
    return ids.get(id)!;
  };
  const visit = (n: GNode) => {
    const text = `${esc(n.label)}<br/><small>${esc(n.detail)}</small>`;
    const shape = n.kind === 'source' ? `[/"${text}"/]` : n.kind === 'sink' ? `[["${text}"]]` : `["${text}"]`;
    lines.push(`  ${nid(n.id)}${shape}`);
    for (const t of n.tables) {
      const tid = nid(`table:${t}`);
      const topic = c.topology.spec.tables[t]?.topic ?? '';
      lines.push(`  ${tid}[("table ${esc(t)}<br/><small>${esc(topic)}</small>")]`, `  ${tid} -.-> ${nid(n.id)}`);
    }
    for (const ch of n.children) {
      // The second flow of a join or a merge: an edge to the step, drawn once below.
      if (ch.id.includes('->')) continue;
      visit(ch);
      lines.push(`  ${nid(n.id)} --> ${nid(ch.id)}`);
    }
  };
  for (const root of roots) visit(root);
  for (const [from, to] of links) lines.push(`  ${nid(from)} --> ${nid(to)}`);
  const dlq = c.topology.spec.errors.deadLetter;
  if (dlq) lines.push(`  dlq>"dead letters<br/><small>${esc(dlq)}</small>"]`);
  return `${lines.join('\n')}\n`;
}

export function toTree(c: CheckedTopology): string {
  const { roots } = build(c);
  const t = c.topology;
  const out = [`${t.metadata.name}${t.metadata.description ? ` — ${t.metadata.description}` : ''}`];
  const visit = (n: GNode, prefix: string, last: boolean, top: boolean) => {
    const branch = top ? '' : last ? '└─ ' : '├─ ';
    const arrow = n.kind === 'sink' ? '▶ ' : '';
    const tables = n.tables.length ? ` ← table ${n.tables.join(', ')}` : '';
    out.push(`${prefix}${branch}${arrow}${n.label}${tables}  (${n.detail})`);
    const next = top ? prefix : prefix + (last ? '   ' : '│  ');
    for (const [i, ch] of n.children.entries()) visit(ch, next, i === n.children.length - 1, false);
  };
  for (const root of roots) visit(root, '', true, true);
  if (t.spec.errors.deadLetter) out.push(`dead letters → ${t.spec.errors.deadLetter}`);
  return `${out.join('\n')}\n`;
}
