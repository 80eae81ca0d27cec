// Every relative link in every tracked Markdown file resolves: the file (or folder) exists, and an `#anchor` into a
// Markdown file names one of its headings, slugged as GitHub does. Links to the web are not fetched.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');

/** The text a reader sees, without fenced code blocks, inline code spans and HTML comments. */
function prose(markdown: string): string[] {
  let fence: string | undefined;
  return markdown
    .replace(/<!--[\s\S]*?-->/g, '')
    .split('\n')
    .map((line) => {
      const f = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
      if (f && (fence === undefined || f.startsWith(fence))) {
        fence = fence === undefined ? f : undefined;
        return '';
      }
      return fence === undefined ? line : '';
    });
}

/** GitHub's heading anchor: lowercase, punctuation but `-` and `_` dropped, spaces to `-` (repeats get -1, -2...). */
function slug(heading: string): string {
  // The rendered text: code spans as they are; elsewhere a link's text, no HTML tags, no emphasis marks.
  const text = heading
    .split(/(`[^`]*`)/)
    .map((part, i) =>
      i % 2 === 1
        ? part.slice(1, -1)
        : part
            .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
            .replace(/<\/?[a-z][^>]*>/gi, '')
            .replace(/\*/g, ''),
    )
    .join('');
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of prose(markdown)) {
    for (const m of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) out.add(m[1]!);
    const h = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const base = slug(h[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Link targets of one file: inline links and images, and reference definitions. */
function links(markdown: string): Array<{ line: number; target: string }> {
  const out: Array<{ line: number; target: string }> = [];
  for (const [i, raw] of prose(markdown).entries()) {
    const line = raw.replace(/`[^`]*`/g, '');
    for (const m of line.matchAll(/\]\(\s*(<[^>]*>|[^)\s]*)(?:\s+"[^"]*")?\s*\)/g))
      out.push({ line: i + 1, target: m[1]!.replace(/^<|>$/g, '') });
    const def = /^ {0,3}\[[^\]]+\]:\s*(\S+)/.exec(line);
    if (def) out.push({ line: i + 1, target: def[1]!.replace(/^<|>$/g, '') });
  }
  return out;
}

/** Every broken relative link of the given Markdown files (paths relative to root), as `file:line: target (why)`. */
function brokenLinks(root: string, files: string[]): string[] {
  const problems: string[] = [];
  const headings = new Map<string, Set<string>>();
  const anchorsOf = (path: string) => {
    if (!headings.has(path)) headings.set(path, anchors(readFileSync(path, 'utf8')));
    return headings.get(path)!;
  };
  for (const file of files) {
    const path = join(root, file);
    if (!existsSync(path)) continue; // deleted in the working tree, not yet in the index
    for (const { line, target } of links(readFileSync(path, 'utf8'))) {
      if (target === '' || /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) continue;
      const hash = target.indexOf('#');
      const pathPart = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
      const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
      const resolved =
        pathPart === '' ? path : pathPart.startsWith('/') ? join(root, pathPart) : resolve(dirname(path), pathPart);
      const where = `${file}:${line}: ${target}`;
      if (!existsSync(resolved)) {
        problems.push(`${where} (no such file: ${relative(root, resolved)})`);
        continue;
      }
      if (anchor === undefined || !resolved.endsWith('.md') || statSync(resolved).isDirectory()) continue;
      if (!anchorsOf(resolved).has(anchor))
        problems.push(`${where} (no heading #${anchor} in ${relative(root, resolved)})`);
    }
  }
  return problems;
}

describe('Markdown links', () => {
  test('every relative link in every tracked Markdown file resolves, anchors included', () => {
    const files = execFileSync('git', ['ls-files', '-z', '*.md'], { cwd: ROOT, encoding: 'utf8' })
      .split('\0')
      .filter(Boolean);
    expect(files).toContain('README.md');
    expect(brokenLinks(ROOT, files)).toEqual([]);
  });

  test('the README stays a way in (about 250 lines); the reference and operations live beside what they describe', () => {
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').length).toBeLessThanOrEqual(255);
  });

  test('a missing file, a missing heading and a wrong slug are caught; code, the web and good links are not', () => {
    const dir = mkdtempSync(join(tmpdir(), 'docs-links-'));
    try {
      writeFileSync(
        join(dir, 'b.md'),
        '# The `spec.tables.<name>` map\n\n## State, time and order\n\n## Notes\n\n## Notes\n\n<a id="custom"></a>\n',
      );
      writeFileSync(
        join(dir, 'a.md'),
        [
          '# A',
          '## Own heading_with-marks!',
          'Good: [b](b.md), [state](b.md#state-time-and-order), [map](./b.md#the-spectablesname-map),',
          '[second notes](b.md#notes-1), [custom](b.md#custom), [own](#own-heading_with-marks), [dir](.), [web](https://x.y/z).',
          'Code is not a link: `[x](nowhere.md)`.',
          '```',
          '[y](nowhere-either.md)',
          '```',
          'Broken: [gone](gone.md), [heading](b.md#no-such-heading), [slug](b.md#State-time-and-order), [own](#a-b).',
          '[ref]: ./missing/ref.md',
        ].join('\n'),
      );
      expect(brokenLinks(dir, ['a.md', 'b.md'])).toEqual([
        'a.md:9: gone.md (no such file: gone.md)',
        'a.md:9: b.md#no-such-heading (no heading #no-such-heading in b.md)',
        'a.md:9: b.md#State-time-and-order (no heading #State-time-and-order in b.md)',
        'a.md:9: #a-b (no heading #a-b in a.md)',
        'a.md:10: ./missing/ref.md (no such file: missing/ref.md)',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.each([
    ['Exactly once, and why each table is safe to replay', 'exactly-once-and-why-each-table-is-safe-to-replay'],
    [
      'The loop: copy, change, validate, test — no service needed',
      'the-loop-copy-change-validate-test--no-service-needed',
    ],
    ['`spec.tables.<name>`', 'spectablesname'],
    [
      'How the dashboards and alerts are verified (no Grafana server here)',
      'how-the-dashboards-and-alerts-are-verified-no-grafana-server-here',
    ],
  ])('slug of %s', (heading, expected) => {
    expect(slug(heading)).toBe(expected);
  });
});
