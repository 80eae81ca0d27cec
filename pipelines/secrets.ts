// What came from the environment never leaves in a message: passwords and tokens from PIPELINES_* (and any other
// variable named like one), the password of any URL or broker address (`user:pw@host`), and the values a topology
// file interpolated with `${VAR}`. Every message a user or a log reader sees goes through mask(): the CLI's error
// line, diagnostics, log lines, dead-letter error headers.

/** Variable names whose values are secrets; a *_LOCATION / *_FILE / *_PATH names a file, which is worth showing. */
const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|API_?KEY|PRIVATE_?KEY|AUTH)/i;
const FILE_NAME = /(LOCATION|FILE|PATH|DIR)$/i;
/** `scheme://user:password@` or a broker `user:password@host`, at the start of a value or after a comma. */
const USERINFO = /(?:^|,|\/\/)\s*[^\s:@/,]+:([^\s@/,]+)@/g;
/** Values too plain to mask without mangling every message (`3`, `true`, `ok`). */
const TOO_PLAIN = /^(?:-?\d+(?:\.\d+)?|true|false|null|[^\s]{0,2})$/i;

const replacements = new Map<string, string>();
let pattern: RegExp | undefined;
let scanned: NodeJS.ProcessEnv | undefined;

/** Masks `value` as `replacement` in every later message (the YAML loader passes `${NAME}`). */
export function keepSecret(value: string, replacement = '***'): void {
  const known = replacements.get(value);
  // A secret already known under `***` stays `***` (the stronger mask wins).
  if (TOO_PLAIN.test(value.trim()) || known === replacement || known === '***') return;
  replacements.set(value, replacement);
  pattern = undefined;
}

/** Records the secrets of an environment; mask() does it for process.env on first use. */
export function keepEnvironmentSecrets(env: NodeJS.ProcessEnv): void {
  for (const [name, value] of Object.entries(env)) {
    if (!value) continue;
    if (SECRET_NAME.test(name) && !FILE_NAME.test(name)) keepSecret(value);
    for (const m of value.matchAll(USERINFO)) keepSecret(m[1]!);
  }
}

/** The value with the password of every `user:password@` in it (a URL's, a broker address's) shown as `***`. */
export function hidePasswords(value: string): string {
  return value.replace(USERINFO, (m, pw: string) => `${m.slice(0, m.length - pw.length - 1)}***@`);
}

/** The text with every known secret replaced. */
export function mask(text: string): string {
  if (scanned !== process.env) {
    scanned = process.env;
    keepEnvironmentSecrets(process.env);
  }
  if (replacements.size === 0) return text;
  pattern ??= new RegExp(
    [...replacements.keys()]
      .sort((a, b) => b.length - a.length)
      .map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('|'),
    'g',
  );
  return text.replace(pattern, (m) => replacements.get(m) ?? '***');
}
