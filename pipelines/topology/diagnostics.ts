// One diagnostic shape for every problem found in a topology, and the one catalogue of their codes.
// The reference (topologies/REFERENCE.md) is generated from this catalogue; a test keeps them in step.

import { PipelinesError } from '../errors.ts';

export type Severity = 'error' | 'warning' | 'info';

export interface Diagnostic {
  code: DiagnosticCode;
  severity: Severity;
  message: string;
  file: string;
  line: number;
  column: number;
  /** Where in the document, as a dotted path (`spec.steps.2.enrich.table`). */
  path: string;
  hint?: string;
}

interface CatalogueEntry {
  severity: Severity;
  stage: 'file' | 'yaml' | 'schema' | 'references' | 'types' | 'lint' | 'input';
  summary: string;
}

export const catalogue = {
  'file-not-found': { severity: 'error', stage: 'file', summary: 'The topology (or test) file cannot be read.' },
  'file-too-large': {
    severity: 'error',
    stage: 'file',
    summary: 'The file is larger than the loader accepts (1 MiB).',
  },
  'yaml-syntax': { severity: 'error', stage: 'yaml', summary: 'The file is not valid YAML.' },
  'yaml-not-a-map': { severity: 'error', stage: 'yaml', summary: 'The document is not a mapping.' },
  'env-unset': {
    severity: 'error',
    stage: 'yaml',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: it documents the interpolation syntax
    summary: '`${VAR}` names an environment variable that is not set and has no `:-default`.',
  },
  'schema-unknown-key': { severity: 'error', stage: 'schema', summary: 'A key that the format does not have.' },
  'schema-missing-key': { severity: 'error', stage: 'schema', summary: 'A required key is missing.' },
  'schema-invalid-type': { severity: 'error', stage: 'schema', summary: 'A value of the wrong type.' },
  'schema-invalid-value': { severity: 'error', stage: 'schema', summary: 'A value outside what the field accepts.' },
  'step-unknown-kind': { severity: 'error', stage: 'schema', summary: 'A step whose kind is not in the registry.' },
  'step-ambiguous-kind': { severity: 'error', stage: 'schema', summary: 'A step item names no kind or several.' },
  'step-duplicate-id': { severity: 'error', stage: 'references', summary: 'Two steps or two sinks share an id.' },
  'repartition-exactly-once': {
    severity: 'error',
    stage: 'references',
    summary: 'A repartition step writes in transactions, and a sink in the same stage cannot join them.',
  },
  'join-key-invalid': {
    severity: 'error',
    stage: 'types',
    summary: 'A join key that both flows cannot share: a record or a list, or of different types on each side.',
  },
  'ref-unknown-source': {
    severity: 'error',
    stage: 'references',
    summary: 'A join or a merge names a flow that is neither a source under `sources` nor an earlier step.',
  },
  'ref-unknown-table': {
    severity: 'error',
    stage: 'references',
    summary: 'A step uses a table not declared in `tables`.',
  },
  'ref-unknown-step': {
    severity: 'error',
    stage: 'references',
    summary: 'A sink reads `from` a step id that does not exist.',
  },
  'ref-schema-not-found': { severity: 'error', stage: 'references', summary: 'An Avro schema file cannot be read.' },
  'ref-schema-invalid': {
    severity: 'error',
    stage: 'references',
    summary: 'An Avro schema file is not a valid schema.',
  },
  'ref-path-outside': {
    severity: 'error',
    stage: 'references',
    summary: 'A schema or module path leaves the folder of the topology file.',
  },
  'ref-module-not-found': { severity: 'error', stage: 'references', summary: 'A `module` step file cannot be loaded.' },
  'ref-module-not-function': {
    severity: 'error',
    stage: 'references',
    summary: 'A `module` step file does not export the named function.',
  },
  'ref-unknown-event-type': {
    severity: 'error',
    stage: 'references',
    summary: 'A `fold` handler or a saga names an event type the source schemas do not have.',
  },
  'saga-invalid': {
    severity: 'error',
    stage: 'references',
    summary: 'A saga that cannot run as written (a reply type used twice, a message that does not fit its schema).',
  },
  'ref-dead-letter-missing': {
    severity: 'error',
    stage: 'references',
    summary: 'A step sends records to the dead-letter topic but `errors.deadLetter` is not set.',
  },
  'expr-syntax': { severity: 'error', stage: 'types', summary: 'An expression is not valid CEL.' },
  'expr-unknown-field': {
    severity: 'error',
    stage: 'types',
    summary: 'An expression reads a field or variable that is not known at that step.',
  },
  'expr-type': { severity: 'error', stage: 'types', summary: 'An expression does not type-check.' },
  'expr-not-bool': { severity: 'error', stage: 'types', summary: 'A condition expression does not return a bool.' },
  'expr-regex': {
    severity: 'error',
    stage: 'types',
    summary: 'A `matches()` pattern that is not a literal, not valid, or cannot run in linear time (RE2 rules).',
  },
  'measure-invalid': { severity: 'error', stage: 'types', summary: 'An aggregate measure is not `fn(expression)`.' },
  'window-invalid': { severity: 'error', stage: 'types', summary: 'A window setting that cannot work.' },
  'sink-unknown-column': {
    severity: 'error',
    stage: 'types',
    summary: 'A sink names a column (or an Avro field) that no step produces.',
  },
  'sink-column-type': {
    severity: 'error',
    stage: 'types',
    summary:
      "A declared ClickHouse column, or a field of a Kafka sink's Avro schema, cannot hold what flows into it (a " +
      'list into UInt64, a string into a long, a number with a fraction into an int).',
  },
  'lint-field-nullable': {
    severity: 'warning',
    stage: 'lint',
    summary: 'A value that can be null flows into an Avro field that cannot hold null: such a record fails to encode.',
  },
  'lint-column-lossy': {
    severity: 'warning',
    stage: 'lint',
    summary: 'A declared ClickHouse column keeps less than flows into it (a fractional number into an integer column).',
  },
  'lint-rows-engine': {
    severity: 'warning',
    stage: 'lint',
    summary:
      'A ClickHouse engine that merges rows the wrong way for what they mean: partial rows into a replacing ' +
      'engine lose rows; running values into a summing engine are counted again.',
  },
  'lint-topic-undeclared': {
    severity: 'info',
    stage: 'lint',
    summary: 'A topic is used but not declared under `topics` (deploy cannot create it).',
  },
  'lint-table-not-compacted': {
    severity: 'warning',
    stage: 'lint',
    summary: 'A table is read from a topic declared with `cleanup: delete`.',
  },
  'lint-unused-table': { severity: 'warning', stage: 'lint', summary: 'A table is declared but no step uses it.' },
  'lint-stateful-without-id': {
    severity: 'info',
    stage: 'lint',
    summary: 'A stateful step has no explicit `id`; its state name is derived from its configuration.',
  },
  'test-state-step': {
    severity: 'error',
    stage: 'references',
    summary: 'A test case expects the state of a step that does not exist or holds no state (`expect.state`).',
  },
  'input-invalid': { severity: 'error', stage: 'input', summary: 'An input event does not match the Avro schema.' },
  internal: { severity: 'error', stage: 'file', summary: 'The loader failed unexpectedly (a bug worth reporting).' },
} as const satisfies Record<string, CatalogueEntry>;

export type DiagnosticCode = keyof typeof catalogue;

export function formatDiagnostic(d: Diagnostic): string {
  const level = d.severity === 'error' ? '' : `${d.severity}: `;
  const hint = d.hint ? ` (${d.hint})` : '';
  return `${d.file}:${d.line}:${d.column}: ${level}${d.message}${hint} [${d.code}]`;
}

export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.severity === 'error');
}

/** Thrown by the library when a file cannot become a plan; the CLI prints `message` without a stack. */
export class TopologyError extends PipelinesError {
  readonly diagnostics: readonly Diagnostic[];
  constructor(diagnostics: readonly Diagnostic[]) {
    const errors = diagnostics.filter((d) => d.severity === 'error');
    super('TOPOLOGY_INVALID', `${errors.length} problem(s):\n${errors.map(formatDiagnostic).join('\n')}`);
    this.name = 'TopologyError';
    this.diagnostics = diagnostics;
  }
}

/** Nearest names by edit distance, for `did you mean` hints. */
export function nearest(word: string, candidates: Iterable<string>, max = 3): string[] {
  const scored: [string, number][] = [];
  const limit = Math.max(2, Math.floor(word.length / 2));
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d <= limit || c.toLowerCase().startsWith(word.toLowerCase())) scored.push([c, d]);
  }
  return scored
    .sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))
    .slice(0, max)
    .map(([c]) => c);
}

export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const list = [...candidates];
  const near = nearest(word, list);
  if (near.length > 0) return `did you mean ${near.map((n) => `'${n}'`).join(' or ')}?`;
  if (list.length > 0 && list.length <= 12) return `known: ${list.map((n) => `'${n}'`).join(', ')}`;
  return undefined;
}

function distance(a: string, b: string): number {
  if (a === b) return 0;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = cur;
  }
  return prev[b.length]!;
}
