// YAML with positions: parses a file, interpolates `${VAR:-default}` from the environment in string scalars,
// and maps a path in the parsed value back to `line:col` in the file.
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument, parse as parseYaml, visit } from 'yaml';
import { keepSecret, mask } from '../secrets.ts';
import type { Diagnostic, DiagnosticCode } from './diagnostics.ts';
import { catalogue } from './diagnostics.ts';

export type Path = readonly (string | number)[];
export interface Position {
  line: number;
  column: number;
}

export const MAX_FILE_BYTES = 1024 * 1024;

/** Syntax errors reported per file; the rest are counted. */
const MAX_SYNTAX_ERRORS = 3;

export class SourceFile {
  readonly file: string;
  readonly text: string;
  readonly value: unknown;
  readonly diagnostics: Diagnostic[] = [];
  readonly #lines = new LineCounter();
  readonly #contents: Node | null = null;

  constructor(file: string, text: string, env: Record<string, string | undefined> = {}) {
    this.file = file;
    this.text = text;
    let value: unknown = null;
    try {
      const doc = parseDocument(text, { lineCounter: this.#lines, prettyErrors: false, uniqueKeys: true });
      // After the first syntax error the parser mostly reports its consequences: say the first few only.
      const shown = doc.errors.slice(0, MAX_SYNTAX_ERRORS);
      for (const [i, e] of shown.entries()) {
        const more = doc.errors.length - shown.length;
        const suffix = i === shown.length - 1 && more > 0 ? ` (and ${more} more syntax errors after it)` : '';
        const pos = this.#pos(e.pos[0]);
        // `{ topic: ${X:-y} }` is the usual culprit: in a flow mapping `{` opens a map, so the value needs quotes.
        const line = text.split('\n')[pos.line - 1] ?? '';
        const hint =
          // biome-ignore lint/suspicious/noTemplateCurlyInString: the hint shows the user's own syntax
          i === 0 && /\{[^}]*\$\{/.test(line) ? 'quote a ${VAR} value inside { }: "${VAR:-default}"' : undefined;
        const message =
          e.code === 'DUPLICATE_KEY'
            ? `duplicate key '${text.slice(e.pos[0], e.pos[1])}': a map has each key once`
            : (e.message.split('\n')[0] ?? e.message);
        this.#at('yaml-syntax', message + suffix, pos, [], hint);
      }
      if (doc.errors.length === 0) this.#splitExpressions(doc);
      if (this.diagnostics.length === 0) {
        this.#contents = doc.contents as Node | null;
        this.#interpolate(doc, env);
        value = doc.toJS({ maxAliasCount: 100 });
      }
    } catch (err) {
      // Pathological input (very deep nesting, alias bombs) must still end in a located message.
      this.#at('yaml-syntax', `cannot parse: ${(err as Error).message}`, { line: 1, column: 1 }, []);
    }
    this.value = value;
  }

  /** Position of the value at `path` (the deepest existing node on the way there). */
  locate(path: Path): Position {
    const node = this.#nodeAt(path, false);
    return this.#pos(node?.range?.[0] ?? 0);
  }

  /** Position of the key that ends `path` (for unknown keys), or of the value when it is not a map entry. */
  locateKey(path: Path): Position {
    const node = this.#nodeAt(path, true);
    return this.#pos(node?.range?.[0] ?? 0);
  }

  /** Position of character `offset` inside the string scalar at `path` (for expressions). */
  locateInScalar(path: Path, offset: number): Position {
    const node = this.#nodeAt(path, false);
    if (!node || !isScalar(node) || !node.range) return this.locate(path);
    const start = this.#pos(node.range[0]);
    const single = node.type === 'PLAIN' || node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE';
    if (!single || typeof node.value !== 'string' || node.value.includes('\n')) return start;
    const quote = node.type === 'PLAIN' ? 0 : 1;
    return { line: start.line, column: start.column + quote + offset };
  }

  diagnostic(code: DiagnosticCode, message: string, path: Path, hint?: string, pos?: Position): Diagnostic {
    const p = pos ?? this.locate(path);
    const d: Diagnostic = {
      code,
      severity: catalogue[code].severity,
      message: mask(message),
      file: this.file,
      line: p.line,
      column: p.column,
      path: path.join('.'),
    };
    if (hint) d.hint = mask(hint);
    return d;
  }

  #at(code: DiagnosticCode, message: string, pos: Position, path: Path, hint?: string): void {
    this.diagnostics.push(this.diagnostic(code, message, path, hint, pos));
  }

  #pos(offset: number): Position {
    const lp = this.#lines.linePos(offset);
    return { line: lp.line, column: lp.col };
  }

  #nodeAt(path: Path, wantKey: boolean): Node | null {
    let node: Node | null = this.#contents;
    for (let i = 0; i < path.length && node; i++) {
      const seg = path[i];
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) return node;
        if (last && wantKey) return pair.key as Node;
        node = (pair.value as Node | null) ?? (pair.key as Node);
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg] as Node | undefined;
        if (!item) return node;
        node = item;
      } else return node;
    }
    return node;
  }

  /**
   * In a flow map (`{ … }`) a comma ends the entry, so `{ p95: quantile(d, 0.95) }` is two entries whose
   * parentheses do not balance: valid YAML that would come back as puzzling schema errors. Said here, with the fix.
   */
  #splitExpressions(doc: ReturnType<typeof parseDocument>): void {
    const open = (v: string) => (v.match(/\(/g)?.length ?? 0) - (v.match(/\)/g)?.length ?? 0);
    visit(doc, {
      Map: (_, map) => {
        if (!map.flow) return;
        for (const [i, pair] of map.items.entries()) {
          const value = pair.value;
          const v = isScalar(value) && value.type === 'PLAIN' ? String(value.value) : undefined;
          if (v === undefined || open(v) <= 0 || !isScalar(pair.key) || !isScalar(value)) continue;
          const rest = map.items.slice(i + 1).map((p) => String((p.key as { source?: string } | null)?.source ?? ''));
          const whole = [v, ...rest].join(', ').replace(/^(.*?\)).*$/, '$1');
          const pos = this.#pos(value.range?.[0] ?? 0);
          this.#at(
            'yaml-syntax',
            `a comma inside { } ended the expression '${v}' (in a flow map, a comma separates entries)`,
            pos,
            [],
            `quote it: ${String(pair.key.value)}: "${whole}"`,
          );
          return visit.BREAK;
        }
      },
    });
  }

  #interpolate(doc: ReturnType<typeof parseDocument>, env: Record<string, string | undefined>): void {
    const pattern = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
    visit(doc, {
      Scalar: (_key, node, ancestry) => {
        if (typeof node.value !== 'string' || !node.value.includes('${')) return;
        const original = node.value;
        const replaced = original.replace(pattern, (m, name: string | undefined, def: string | undefined) => {
          if (m === '$${') return '${';
          const v = env[name!];
          if (v !== undefined && v !== '') {
            keepSecret(v, `\${${name}}`);
            return v;
          }
          if (def !== undefined) return def;
          const path = ancestry
            .filter(isPair)
            .map((p) => (isScalar(p.key) ? String(p.key.value) : '?'))
            .join('.');
          this.#at(
            'env-unset',
            `environment variable '${name}' is not set`,
            this.#pos(node.range?.[0] ?? 0),
            [path],
            `set it, or give a default: \${${name}:-value}`,
          );
          return '';
        });
        // A plain scalar that was only a variable takes the YAML type of its value (`partitions: ${P:-3}` is 3).
        if (node.type === 'PLAIN' && /^\$\{[^}]*\}$/.test(original)) {
          try {
            const typed = parseYaml(replaced);
            node.value = typed === null || typeof typed !== 'object' ? typed : replaced;
          } catch {
            node.value = replaced;
          }
        } else node.value = replaced;
      },
    });
  }
}
