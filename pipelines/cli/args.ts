// Small helpers shared by the subcommands: options and user-facing errors.
// Exit codes: 0 done (nothing found), 1 problems found or the work failed, 2 a usage error (nothing was done).

import { type ParseArgsConfig, parseArgs } from 'node:util';
import { PipelinesError } from '../errors.ts';
import { isKafkaClientError, isTransientKafkaError } from '../kafka/errors.ts';
import { mask } from '../secrets.ts';
import { wholeBound, wholeOf } from '../settings.ts';
import { nearest } from '../topology/diagnostics.ts';

/** A subcommand of `pipelines`, as listed in commands.ts. */
export interface Command {
  summary: string;
  /** What `--help` (or `-h`) prints, beginning `usage: pipelines …`. */
  help: string;
  /** Resolves to the process exit code. */
  run(args: string[]): Promise<number>;
}

export const EXIT_PROBLEMS = 1;
export const EXIT_USAGE = 2;

/** The command was called wrongly: its usage line; exit 2. */
export function usage(text: string): Error {
  return new PipelinesError('USAGE', `usage: pipelines ${text}`);
}

/** An option with a value it cannot take: exit 2. */
export function usageError(message: string): Error {
  return new PipelinesError('USAGE', message);
}

/**
 * A whole-number option: `fallback` when it is absent, a usage error when it is not whole or below `min` (the
 * message says the bound: "above 0" for 1, none for -Infinity).
 */
export function wholeNumber(name: string, raw: string | undefined, fallback: number, min = 1): number {
  if (raw === undefined) return fallback;
  const n = wholeOf(raw, min);
  if (n !== undefined) return n;
  throw usageError(`--${name}: a whole number${wholeBound(min)}, not '${raw}'`);
}

/**
 * A decimal option from `min` to `max`: `fallback` when it is absent, a usage error naming the option when it is
 * not a number in that range (`what` says the range in its words: "a share from 0 to 1").
 */
export function decimalNumber(
  name: string,
  raw: string | undefined,
  fallback: number,
  min = 0,
  max = Number.POSITIVE_INFINITY,
  what = `a number of at least ${min}`,
): number {
  if (raw === undefined) return fallback;
  const n = raw.trim() === '' ? Number.NaN : Number(raw);
  if (Number.isFinite(n) && n >= min && n <= max) return n;
  throw usageError(`--${name}: ${what}, not '${raw}'`);
}

/** A share of something (0 to 1, e.g. 0.01 for 1%), 0 when absent. */
export function share(name: string, raw: string | undefined): number {
  return decimalNumber(name, raw, 0, 0, 1, 'a share from 0 to 1 (0.01 for 1%)');
}

/** Something the user can fix that is not the command line (a file, a group with members): exit 1. */
export function userError(message: string): Error {
  return new PipelinesError('INPUT', message);
}

/** The exit code of a failure: 2 for how the command was called, 1 for anything else. */
export function exitCodeOf(err: unknown): number {
  const code = (err as { code?: unknown })?.code;
  return code === 'USAGE' || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))
    ? EXIT_USAGE
    : EXIT_PROBLEMS;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * The one option parser of the subcommands: node's parseArgs, strict. An unknown option is a usage error that
 * names the nearest known one; a missing or extra value too.
 */
export function parseOptions<O extends Options>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const given = /'(-[^']*)'/.exec(e.message)?.[1] ?? '';
      const near = nearest(given.replace(/^-+/, '').split('=')[0]!, Object.keys(options), 2);
      const hint = near.length > 0 ? `; did you mean ${near.map((n) => `'--${n}'`).join(' or ')}?` : '';
      throw usageError(`unknown option '${given}'${hint}`);
    }
    if (e.code?.startsWith('ERR_PARSE_ARGS')) throw usageError(e.message.split('. To specify')[0]!);
    throw err;
  }
}

/**
 * What the CLI prints for a failure: one `error:` line saying what, and what to check. Expected failures are
 * PipelinesErrors, their message written for the user; node:util parseArgs refuses options with ERR_PARSE_ARGS_*;
 * the Kafka client's errors (a numeric code) name the broker or the PIPELINES_KAFKA_* settings. Only an error of the
 * engine's own kinds (TypeError and the like) is a bug, said as one; the trace comes with PIPELINES_LOG_LEVEL=debug.
 */
export function failureText(command: string, err: unknown, env: NodeJS.ProcessEnv = process.env): string {
  const e = err instanceof Error ? err : new Error(String(err));
  const trace = env.PIPELINES_LOG_LEVEL === 'debug' && e.stack ? `\n${e.stack}` : '';
  const line = (text: string) => mask(`pipelines ${command}: ${text}${trace}\n`);
  const code = (e as { code?: unknown }).code;
  if (err instanceof PipelinesError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')))
    return line(`error: ${e.message}`);
  if (isTransientKafkaError(err))
    return line(`error: Kafka: ${e.message} (is the broker up, at PIPELINES_BROKERS or --brokers?)`);
  if (isKafkaClientError(err))
    return line(`error: Kafka client: ${e.message} (check PIPELINES_BROKERS and the PIPELINES_KAFKA_* settings)`);
  if (!(err instanceof Error) || BUG_KINDS.some((k) => err instanceof k))
    return line(`internal error: ${e.message}${trace ? '' : ' (PIPELINES_LOG_LEVEL=debug shows where)'}`);
  return line(`error: ${e.message}`);
}

const BUG_KINDS = [TypeError, ReferenceError, RangeError, SyntaxError, EvalError];
