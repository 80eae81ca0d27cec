// The checks of the values a command reads from its environment (and of the flags that stand in for them). Each is
// checked where it is read, and a bad one is a CONFIG error of one line: the variable, its value (a password in it
// shown as ***), what is wrong and what to write instead, e.g.
//   PIPELINES_BROKERS: port 99999 of '127.0.0.1:99999' is out of range (1-65535): write host:port
// The CLI prints it as any user error (exit 1), through mask() like every message.

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { PipelinesError } from './errors.ts';
import { hidePasswords } from './secrets.ts';
import { didYouMean } from './topology/diagnostics.ts';

/** A value `name` cannot take: `name: what: write fix`. */
export function settingError(name: string, what: string, fix: string): PipelinesError {
  return new PipelinesError('CONFIG', `${name}: ${what}: write ${fix}`);
}

/** The value as a message may quote it: any `user:password@` password as `***`. */
export function shown(value: string): string {
  return `'${hidePasswords(value)}'`;
}

/**
 * The one whole-number parser of options and variables: the number, or undefined when `raw` is not a whole number
 * of at least `min`. `wholeBound` says the bound as the messages do ("above 0" for 1, none for -Infinity).
 */
export function wholeOf(raw: string, min = 1): number | undefined {
  const n = raw.trim() === '' ? Number.NaN : Number(raw);
  return Number.isInteger(n) && n >= min ? n : undefined;
}

export function wholeBound(min = 1): string {
  return min === 1 ? ' above 0' : Number.isFinite(min) ? ` of at least ${min}` : '';
}

/** A whole-number variable: `fallback` when unset or empty; `fix` says what to write ("milliseconds, e.g. 1000"). */
export function wholeSetting(env: NodeJS.ProcessEnv, name: string, fallback: number, fix: string, min?: number): number;
export function wholeSetting(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: undefined,
  fix: string,
  min?: number,
): number | undefined;
export function wholeSetting(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number | undefined,
  fix: string,
  min = 1,
): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = wholeOf(raw, min);
  if (n === undefined) throw settingError(name, `${shown(raw)} is not a whole number${wholeBound(min)}`, fix);
  return n;
}

/** A value out of a fixed list (compared case-insensitively); the unknown one gets the nearest known ones. */
export function oneOf<T extends string>(name: string, raw: string, allowed: readonly T[]): T {
  const found = allowed.find((a) => a.toLowerCase() === raw.trim().toLowerCase());
  if (found !== undefined) return found;
  const near = didYouMean(raw.trim(), allowed);
  const hint = near?.startsWith('did you mean') ? ` (${near})` : '';
  throw settingError(name, `unknown value ${shown(raw)}${hint}`, `one of ${allowed.join(', ')}`);
}

/** The port of `value` (its text `port`): a whole number from `min` (1, or 0 where 0 picks a free port) to 65535. */
export function portOf(name: string, port: string, value: string, fix: string, min = 1): number {
  const n = /^\d+$/.test(port) ? Number(port) : Number.NaN;
  if (Number.isNaN(n)) throw settingError(name, `port '${port}' of ${shown(value)} is not a number`, fix);
  if (n < min || n > 65535)
    throw settingError(name, `port ${n} of ${shown(value)} is out of range (${min}-65535)`, fix);
  return n;
}

/** A `host:port[,host:port]` list (Kafka bootstrap servers): no empty entry, no scheme, no credentials. */
export function hostPortList(name: string, raw: string): string[] {
  const fix = 'host:port[,host:port]';
  const entries = raw.split(',').map((b) => b.trim());
  if (entries.every((e) => e === '')) throw settingError(name, 'no Kafka brokers', `${fix}, e.g. 127.0.0.1:19092`);
  for (const e of entries) {
    if (e === '') throw settingError(name, `an empty entry in ${shown(raw)}`, `${fix} without an empty entry`);
    if (e.includes('@'))
      throw settingError(
        name,
        `${shown(e)} has credentials`,
        'host:port, and the user and password in PIPELINES_KAFKA_SASL_USERNAME and PIPELINES_KAFKA_SASL_PASSWORD',
      );
    if (e.includes('://')) throw settingError(name, `${shown(e)} has a scheme`, 'host:port, without a scheme');
    const m = /^(\[[^\]\s]+\]|[^\s:[\]/]+):([^:]*)$/.exec(e);
    if (!m)
      throw settingError(name, `${shown(e)} is not host:port`, `host:port, e.g. ${e.split(':')[0] || 'kafka'}:9092`);
    portOf(name, m[2]!, e, 'host:port');
  }
  return entries;
}

/**
 * An http(s) URL (the registry, ClickHouse, a worker's status): a scheme, a host, a port in range if it has one.
 * `example` is the usual address, for the message.
 */
export function httpUrl(name: string, raw: string, example: string): string {
  const value = raw.trim();
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(value)?.[1];
  if (scheme === undefined) {
    throw settingError(name, `${shown(value)} has no scheme`, value ? hidePasswords(`http://${value}`) : example);
  }
  const rest = value.slice(scheme.length + 3);
  if (!/^https?$/i.test(scheme))
    throw settingError(
      name,
      `scheme '${scheme}' of ${shown(value)} is not http or https`,
      hidePasswords(`http://${rest}`),
    );
  const authority = /^[^/?#]*/.exec(rest)![0].replace(/^.*@/, '');
  const hp = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(authority)!;
  if (!hp[1]) throw settingError(name, `${shown(value)} has no host`, example);
  if (hp[2] !== undefined) portOf(name, hp[2], value, `${scheme}://host:port, e.g. ${example}`);
  try {
    new URL(value);
  } catch {
    throw settingError(name, `${shown(value)} is not a URL`, example);
  }
  return value;
}

/** A file (or folder) the value names: it must exist (relative to the cwd); `what` says what it should hold. */
export function existingPath(name: string, raw: string, what: string, cwd = process.cwd()): string {
  if (!existsSync(resolve(cwd, raw))) throw settingError(name, `no file at '${raw}'`, `the path of ${what}`);
  return raw;
}
