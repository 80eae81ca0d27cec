// The validator: one compiler that collects every problem of a topology file, stage by stage
// (YAML → schema → references → types flowing through the steps → lints), each located at file:line:col.
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, extname, relative, resolve, sep } from 'node:path';
import type { CheckContext, RelPath, RowKind, TableInfo } from '../steps/step.ts';
import { shortHash } from '../steps/step.ts';
import { type LoadedSchema, loadAvsc } from '../topology/avro.ts';
import { catalogue, type Diagnostic, type DiagnosticCode, didYouMean } from '../topology/diagnostics.ts';
import { ExpressionChecker } from '../topology/expressions.ts';
import type { FieldType, Scope } from '../topology/types.ts';
import { COUNT, DYN, EPOCH_MS, mergeTypes, STRING } from '../topology/types.ts';
import { MAX_FILE_BYTES, type Path, SourceFile } from '../topology/yaml.ts';
import type { CheckedSink, CheckedStep, CheckedTopology } from './checked.ts';
import { validate } from './issues.ts';
import { sinksByKind, stepsByKind } from './kinds.ts';
import { type Topology, TopologySchema } from './schema.ts';
import { exactlyOnceConflicts, withRepartitions } from './stages.ts';

export interface CompileOptions {
  /** Environment for `${VAR:-default}` (default: process.env). */
  env?: Record<string, string | undefined>;
  /** How the file is named in diagnostics (default: relative to the working directory). */
  displayPath?: string;
}

export interface CheckResult {
  diagnostics: Diagnostic[];
  checked?: CheckedTopology;
  source?: SourceFile;
}

export function readSource(file: string, opts: CompileOptions = {}): SourceFile | Diagnostic {
  const display = opts.displayPath ?? (relative(process.cwd(), file) || file);
  const at = (code: DiagnosticCode, message: string): Diagnostic => ({
    code,
    severity: catalogue[code].severity,
    message,
    file: display,
    line: 1,
    column: 1,
    path: '',
  });
  let text: string;
  try {
    if (statSync(file).size > MAX_FILE_BYTES)
      return at('file-too-large', `file is larger than ${MAX_FILE_BYTES} bytes`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return at('file-not-found', `cannot read file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return new SourceFile(display, text, opts.env ?? process.env);
}

/** Checks one topology file; never throws for bad input. */
export function checkFile(file: string, opts: CompileOptions = {}): CheckResult {
  const src = readSource(resolve(file), opts);
  if (!(src instanceof SourceFile)) return { diagnostics: [src] };
  try {
    return checkSource(src, dirname(resolve(file)));
  } catch (err) {
    const d = src.diagnostic('internal', `the validator failed: ${(err as Error).message}`, []);
    return { diagnostics: [...src.diagnostics, d], source: src };
  }
}

export function checkSource(src: SourceFile, dir: string): CheckResult {
  const diagnostics = [...src.diagnostics];
  if (diagnostics.some((d) => d.code === 'yaml-syntax')) return { diagnostics, source: src };
  if (!src.value || typeof src.value !== 'object' || Array.isArray(src.value)) {
    diagnostics.push(
      src.diagnostic('yaml-not-a-map', 'a topology file is a YAML mapping (apiVersion, kind, metadata, spec)', []),
    );
    return { diagnostics, source: src };
  }
  const schemaProblems = validate(TopologySchema, src.value, src);
  diagnostics.push(...schemaProblems);
  if (schemaProblems.length > 0) return { diagnostics, source: src };
  const topology = TopologySchema.parse(src.value) as Topology;
  const flow = new TypeFlow(src, dir, topology);
  const checked = flow.run();
  diagnostics.push(...flow.diagnostics);
  return { diagnostics: sortDiagnostics(diagnostics), checked, source: src };
}

function sortDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  return ds.sort((a, b) => a.line - b.line || a.column - b.column);
}

/** References, the types flowing through the steps, and lints. */
class TypeFlow {
  readonly diagnostics: Diagnostic[] = [];
  readonly #checker = new ExpressionChecker();
  readonly #src: SourceFile;
  readonly #dir: string;
  readonly #t: Topology;
  readonly #raw: Record<string, unknown>;

  constructor(src: SourceFile, dir: string, topology: Topology) {
    this.#src = src;
    this.#dir = dir;
    this.#t = topology;
    this.#raw = src.value as Record<string, unknown>;
  }

  report(code: DiagnosticCode, message: string, path: Path, hint?: string) {
    const pos = code === 'schema-unknown-key' ? this.#src.locateKey(path) : this.#src.locate(path);
    this.diagnostics.push(this.#src.diagnostic(code, message, path, hint, pos));
  }

  expr(
    source: string,
    path: Path,
    scope: Scope,
    opts: { bool?: boolean; offset?: number; quiet?: boolean } = {},
  ): FieldType | undefined {
    const r = this.#checker.check(source, scope, opts);
    for (const p of opts.quiet ? [] : r.problems) {
      const pos = this.#src.locateInScalar(path, p.offset + (opts.offset ?? 0));
      this.diagnostics.push(this.#src.diagnostic(p.code, p.message, path, p.hint, pos));
    }
    return r.problems.length === 0 ? r.type : undefined;
  }

  /** Resolves a path relative to the topology; refuses one that leaves its folder. */
  file(rel: string, path: Path): string | undefined {
    const abs = resolve(this.#dir, rel);
    const inside = (p: string, root: string) => p === root || p.startsWith(root + sep);
    if (!inside(abs, this.#dir)) {
      this.report(
        'ref-path-outside',
        `'${rel}' is outside the folder of the topology`,
        path,
        // A deployed worker gets the topology's folder only (one ConfigMap, files by relative path).
        'keep schemas and modules beside the topology: topologies that share schemas live in one folder with ' +
          'one schemas/ folder, as topologies/ does (a deployed worker mounts its topology folder only)',
      );
      return undefined;
    }
    const notFound: DiagnosticCode = extname(rel) === '.avsc' ? 'ref-schema-not-found' : 'ref-module-not-found';
    if (!existsSync(abs)) {
      this.report(notFound, `file '${rel}' not found`, path, this.#siblings(abs));
      return undefined;
    }
    if (!inside(realpathSync(abs), realpathSync(this.#dir))) {
      this.report('ref-path-outside', `'${rel}' links outside the folder of the topology`, path);
      return undefined;
    }
    return abs;
  }

  #siblings(abs: string): string | undefined {
    try {
      const d = dirname(abs);
      const names = readdirSync(d).filter((n) => extname(n) === extname(abs));
      const base = abs.slice(d.length + 1);
      const near = didYouMean(base, names);
      return near;
    } catch {
      return undefined;
    }
  }

  #schema(rel: string, path: Path): LoadedSchema | undefined {
    const abs = this.file(rel, path);
    if (!abs) return undefined;
    try {
      return loadAvsc(abs);
    } catch (err) {
      this.report('ref-schema-invalid', `invalid Avro schema '${rel}': ${(err as Error).message}`, path);
      return undefined;
    }
  }

  run(): CheckedTopology {
    const t = this.#t;
    const spec = t.spec;
    // Sources: the event types on each topic, and the variables every flow starts with.
    const main = this.#source(spec.source, ['spec', 'source']);
    const { schemas, eventTypes, scope: sourceScope } = main;
    const sources = new Map<string, { scope: Scope; schemas: LoadedSchema[] }>();
    for (const [name, sc] of Object.entries(spec.sources)) {
      const s = this.#source(sc, ['spec', 'sources', name]);
      sources.set(name, { scope: s.scope, schemas: s.schemas });
      schemas.push(...s.schemas);
      for (const [n, t] of s.eventTypes) if (!eventTypes.has(n)) eventTypes.set(n, t);
    }

    // Tables.
    const tables = new Map<string, { info: TableInfo; schema?: LoadedSchema }>();
    for (const [name, tc] of Object.entries(spec.tables)) {
      const schema = tc.schema ? this.#schema(tc.schema, ['spec', 'tables', name, 'schema']) : undefined;
      const row = schema?.fieldType ?? DYN;
      if (tc.key && row.kind === 'record' && !(tc.key in row.fields)) {
        this.report(
          'expr-unknown-field',
          `a row of table '${name}' has no field '${tc.key}'`,
          ['spec', 'tables', name, 'key'],
          didYouMean(tc.key, Object.keys(row.fields)),
        );
      }
      tables.set(name, { info: { name, row }, ...(schema ? { schema } : {}) });
    }

    // Steps, in order: each sees the variables the previous one produced.
    const hasDeadLetter = spec.errors.deadLetter !== undefined;
    const used = new Set<string>();
    const ids = new Map<string, Path>();
    const steps: CheckedStep[] = [];
    for (const name of sources.keys()) ids.set(name, ['spec', 'sources', name]);
    /** The variables of a flow: the main source, a named source, or an earlier step. */
    const flowScope = (id: string): Scope | undefined =>
      id === 'source' ? sourceScope : (sources.get(id)?.scope ?? steps.find((s) => s.id === id)?.scopeOut);
    let prev = 'source';
    const rawSteps = ((this.#raw.spec as Record<string, unknown>).steps ?? []) as Record<string, unknown>[];
    spec.steps.forEach((item, i) => {
      const entry = item as Record<string, unknown>;
      const kind = Object.keys(rawSteps[i] ?? entry).find((k) => stepsByKind.has(k))!;
      const stepSpec = stepsByKind.get(kind)!;
      const config = entry[kind];
      const path: Path = ['spec', 'steps', i];
      const id = (entry.id as string | undefined) ?? `${kind}-${stepSpec.idHint(config as never)}`;
      if (ids.has(id)) {
        this.report(
          'step-duplicate-id',
          `step id '${id}' is used twice`,
          entry.id ? [...path, 'id'] : path,
          entry.id ? undefined : 'give one of them an explicit id',
        );
      }
      ids.set(id, path);
      if (stepSpec.stateful && !entry.id) {
        this.report(
          'lint-stateful-without-id',
          `${kind} step has no id; its state is named '${id}', derived from its config`,
          [...path, kind],
          `add id: ${id}`,
        );
      }
      for (const table of stepSpec.tables?.(config) ?? []) used.add(table);
      let from = prev;
      const flows = () => ['source', ...sources.keys(), ...steps.map((s) => s.id)];
      if (entry.from !== undefined) {
        if (flowScope(entry.from as string)) from = entry.from as string;
        else {
          this.report(
            'ref-unknown-step',
            `no source or step with id '${entry.from}' before this one`,
            [...path, 'from'],
            didYouMean(entry.from as string, flows()),
          );
        }
      }
      const scopeIn = flowScope(from)!;
      const inputs = stepSpec.inputs?.(config as never) ?? [];
      const inputScopes: Scope[] = [];
      inputs.forEach((name, k) => {
        const scope = flowScope(name);
        const at: Path = [
          ...path,
          kind,
          'with',
          ...(inputs.length > 1 || Array.isArray((config as { with?: unknown }).with) ? [k] : []),
        ];
        if (!scope)
          this.report(
            'ref-unknown-source',
            `no source under spec.sources and no step before this one is named '${name}'`,
            at,
            didYouMean(name, flows()) ?? 'declare it under spec.sources, or name an earlier step',
          );
        else if (name === from)
          this.report('ref-unknown-source', `'${name}' is the flow this step already reads`, at, 'name another flow');
        inputScopes.push(scope ?? {});
      });
      const ctx = {
        ...this.#context(scopeIn, [...path, kind], tables, eventTypes, hasDeadLetter),
        inputs: inputScopes,
      };
      const out = stepSpec.check(config as never, ctx);
      steps.push({
        id,
        kind,
        spec: stepSpec,
        config,
        description: entry.description as string | undefined,
        path,
        from,
        ...(inputs.length > 0 ? { inputs } : {}),
        scopeIn,
        scopeOut: out,
      });
      prev = id;
    });
    if (spec.source.partitionedBy)
      this.expr(spec.source.partitionedBy, ['spec', 'source', 'partitionedBy'], sourceScope);
    const partitionedBy: Record<string, string | undefined> = { source: spec.source.partitionedBy };
    for (const [name, sc] of Object.entries(spec.sources)) {
      partitionedBy[name] = sc.partitionedBy;
      if (sc.partitionedBy)
        this.expr(sc.partitionedBy, ['spec', 'sources', name, 'partitionedBy'], sources.get(name)!.scope);
    }
    const planned = withRepartitions(steps, partitionedBy);
    steps.splice(0, steps.length, ...planned);
    const scope = steps.at(-1)?.scopeOut ?? sourceScope;

    /** What the records reaching a sink from step `id` mean: the nearest step upstream that says. */
    const rowsFrom = (id: string): RowKind | undefined => {
      for (let step = steps.find((s) => s.id === id); step; step = steps.find((s) => s.id === step!.from)) {
        const rows = step.spec.rows?.(step.config as never);
        if (rows) return rows;
      }
      return undefined;
    };

    // Sinks: each reads the last step, or the step named in `from`; then those a step declares itself.
    const sinks: CheckedSink[] = [];
    const addSink = (kind: string, config: CheckedSink['config'], path: Path) => {
      const sinkSpec = sinksByKind.get(kind)!;
      const id = (config.id as string | undefined) ?? sinkSpec.defaultId(config as never);
      if (ids.has(id)) {
        this.report(
          'step-duplicate-id',
          `id '${id}' is used twice`,
          config.id ? [...path, 'id'] : path,
          config.id ? undefined : 'give the sink an explicit id',
        );
      }
      ids.set(id, path);
      let from = steps.at(-1)?.id ?? 'source';
      let sinkScope = scope;
      if (config.from !== undefined) {
        const fromScope = flowScope(config.from);
        if (!fromScope) {
          this.report(
            'ref-unknown-step',
            `no step with id '${config.from}'`,
            [...path, 'from'],
            didYouMean(config.from, ['source', ...sources.keys(), ...steps.map((s) => s.id)]),
          );
        } else {
          from = config.from;
          sinkScope = fromScope;
        }
      }
      const ctx = { ...this.#context(sinkScope, path, tables, eventTypes, hasDeadLetter), rows: rowsFrom(from) };
      if (config.when !== undefined) ctx.expr(config.when, ['when'], { bool: true });
      sinkSpec.check(config as never, ctx, sinkScope);
      sinks.push({ id, kind, spec: sinkSpec, config, path, from, scope: sinkScope });
    };
    spec.sinks.forEach((item, i) => {
      const entry = item as Record<string, unknown>;
      const kind = Object.keys(entry).find((k) => sinksByKind.has(k))!;
      addSink(kind, entry[kind] as CheckedSink['config'], ['spec', 'sinks', i, kind]);
    });
    for (const step of steps) {
      for (const own of step.spec.sinks?.(step.config as never, step.id) ?? []) {
        // Parsed by the sink kind's schema, as a sink written under spec.sinks would be.
        const config = sinksByKind.get(own.kind)!.config.parse(own.config) as CheckedSink['config'];
        addSink(own.kind, config, [...step.path, step.kind, ...own.at]);
      }
    }

    for (const { step, sink } of exactlyOnceConflicts({ steps, sinks })) {
      this.report(
        'repartition-exactly-once',
        `repartition step '${step.id}' writes its topic in transactions, but sink '${sink.id}' before it cannot ` +
          'join them',
        [...step.path, step.kind],
        sink.kind === 'kafka'
          ? `give sink '${sink.id}' exactlyOnce: true, or the step exactlyOnce: false (at least once)`
          : `feed sink '${sink.id}' from after the repartition step, or give the step exactlyOnce: false (at least once)`,
      );
    }
    this.#lints(used, sinks);
    return {
      file: this.#src.file,
      dir: this.#dir,
      topology: t,
      schemas,
      eventTypes,
      sourceScope,
      sources,
      tables,
      steps,
      sinks,
    };
  }

  /** One source's schemas and event types, and the variables its flow starts with. */
  #source(
    sc: Topology['spec']['sources'][string],
    base: Path,
  ): { schemas: LoadedSchema[]; eventTypes: Map<string, FieldType>; scope: Scope } {
    const schemas: LoadedSchema[] = [];
    sc.value.schemas.forEach((rel, i) => {
      const s = this.#schema(rel, [...base, 'value', 'schemas', i]);
      if (s) schemas.push(s);
    });
    const eventTypes = new Map<string, FieldType>();
    for (const s of schemas) if (s.shortName) eventTypes.set(s.shortName, s.fieldType);
    const event = schemas.length > 0 ? schemas.map((s) => s.fieldType).reduce(mergeTypes) : DYN;
    const recordType: FieldType = {
      kind: 'record',
      name: 'Record',
      fields: {
        topic: STRING,
        partition: COUNT,
        offset: DYN,
        timestamp: EPOCH_MS,
        headers: { kind: 'map', values: DYN },
      },
    };
    const scope: Scope = {
      event,
      key: sc.key.format === 'string' ? { kind: 'string', nullable: true } : DYN,
      record: recordType,
    };
    if (sc.eventTime) this.expr(sc.eventTime, [...base, 'eventTime'], scope);
    return { schemas, eventTypes, scope };
  }

  #context(
    scope: Scope,
    base: Path,
    tables: Map<string, { info: TableInfo }>,
    eventTypes: Map<string, FieldType>,
    hasDeadLetter: boolean,
  ): CheckContext {
    return {
      scope,
      tables: new Map([...tables].map(([k, v]) => [k, v.info])),
      eventTypes,
      hasDeadLetter,
      inputs: [],
      expr: (source: string, at: RelPath, opts = {}) => this.expr(source, [...base, ...at], opts.scope ?? scope, opts),
      report: (code, message, at, hint) => this.report(code, message, [...base, ...at], hint),
      file: (rel, at) => this.file(rel, [...base, ...at]),
    };
  }

  #lints(usedTables: Set<string>, sinks: CheckedSink[]) {
    const spec = this.#t.spec;
    const declared = spec.topics;
    const undeclared = (topic: string, path: Path) => {
      if (!(topic in declared)) {
        this.report(
          'lint-topic-undeclared',
          `topic '${topic}' is not declared under spec.topics`,
          path,
          'declare it so that deploy can create it',
        );
      }
    };
    undeclared(spec.source.topic, ['spec', 'source', 'topic']);
    for (const [name, sc] of Object.entries(spec.sources)) undeclared(sc.topic, ['spec', 'sources', name, 'topic']);
    for (const [name, tc] of Object.entries(spec.tables)) {
      undeclared(tc.topic, ['spec', 'tables', name, 'topic']);
      if (declared[tc.topic]?.cleanup === 'delete') {
        this.report(
          'lint-table-not-compacted',
          `table '${name}' reads '${tc.topic}', declared with cleanup: delete`,
          ['spec', 'topics', tc.topic, 'cleanup'],
          'use cleanup: compact for a table topic',
        );
      }
      if (!usedTables.has(name))
        this.report('lint-unused-table', `table '${name}' is not used by any step`, ['spec', 'tables', name]);
    }
    for (const s of sinks)
      for (const t of s.spec.needs(s.config, s.scope).topics ?? []) undeclared(t.name, [...s.path, ...t.at]);
    if (spec.errors.deadLetter) undeclared(spec.errors.deadLetter, ['spec', 'errors', 'deadLetter']);
  }
}

export { shortHash };
