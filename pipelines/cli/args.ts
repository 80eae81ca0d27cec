// Small helpers shared by the subcommands: options and user-facing errors.

/** A subcommand of `pipelines`, as listed in commands.ts. */
import { PipelinesError } from '../errors.ts';
import { isKafkaClientError, isTransientKafkaError } from '../kafka/errors.ts';
import { mask } from '../secrets.ts';

export interface Command {
  summary: string;
  /** What `--help` (or `-h`) prints, beginning `usage: pipelines …`. */
  help: string;
  /** Resolves to the process exit code. */
  run(args: string[]): Promise<number>;
}

export function usage(text: string): Error {
  return new PipelinesError('USAGE', `usage: pipelines ${text}`);
}

export function userError(message: string): Error {
  return new PipelinesError('USAGE', message);
}

/** The value of `--name value` or `--name=value`. */
export function option(args: string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === `--${name}`) return args[i + 1];
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
}

/** Arguments that are neither options nor their values. */
export function positional(args: string[], withValues: string[] = []): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (withValues.includes(a.replace(/^--/, ''))) i++;
    else if (!a.startsWith('-')) out.push(a);
  }
  return out;
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
