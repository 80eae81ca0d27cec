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

function build(c: CheckedTopology): GNode {
  const src = c.topology.spec.source;
  const types = c.schemas.map((s) => s.shortName).filter(Boolean);
  const root: GNode = {
    id: 'source',
    label: `source ${src.topic}`,
    detail: `${src.value.format}${types.length ? `: ${types.join(', ')}` : ''}`,
    kind: 'source',
    children: [],
    tables: [],
  };
  const nodes = new Map<string, GNode>([['source', root]]);
  for (const s of c.steps) {
    const node: GNode = {
      id: s.id,
      label: `${s.kind} ${s.id}`,
      // Where a repartition sends the records between the workers (named from the group; `--group` renames it).
      detail:
        s.kind === 'repartition'
          ? `${s.spec.describe(s.config)}, via topic ${repartitionTopic(src.group, s.id)}`
          : (s.description ?? s.spec.describe(s.config)),
      kind: 'step',
      children: [],
      tables: s.spec.tables?.(s.config) ?? [],
    };
    nodes.get(s.from)?.children.push(node);
    nodes.set(s.id, node);
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
  return root;
}

const esc = (s: string) => s.replace(/"/g, '#quot;').replace(/[<>]/g, (m) => (m === '<' ? '#lt;' : '#gt;'));

export function toMermaid(c: CheckedTopology): string {
  const root = build(c);
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
      visit(ch);
      lines.push(`  ${nid(n.id)} --> ${nid(ch.id)}`);
    }
  };
  visit(root);
  const dlq = c.topology.spec.errors.deadLetter;
  if (dlq) lines.push(`  dlq>"dead letters<br/><small>${esc(dlq)}</small>"]`);
  return `${lines.join('\n')}\n`;
}

export function toTree(c: CheckedTopology): string {
  const root = build(c);
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
  visit(root, '', true, true);
  if (t.spec.errors.deadLetter) out.push(`dead letters → ${t.spec.errors.deadLetter}`);
  return `${out.join('\n')}\n`;
}
