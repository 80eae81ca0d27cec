// Small helpers shared by the subcommands: options and user-facing errors.

/** A subcommand of `pipelines`, as listed in commands.ts. */
import { PipelinesError } from '../errors.ts';
import { isTransientKafkaError } from '../kafka/errors.ts';

export interface Command {
  summary: string;
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
 * What the CLI prints for a failure. Expected failures are PipelinesErrors, their message written for the user;
 * node:util parseArgs refuses options with ERR_PARSE_ARGS_* (the user's to fix too); a Kafka client error that
 * says the broker is away is one line with what to check; anything else is a bug worth its stack.
 */
export function failureText(command: string, err: unknown): string {
  const e = err as Error & { code?: unknown };
  if (err instanceof PipelinesError || (typeof e?.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS')))
    return `pipelines ${command}: ${e.message}\n`;
  if (isTransientKafkaError(err))
    return `pipelines ${command}: Kafka: ${e.message} (is the broker up, at PIPELINES_BROKERS or --brokers?)\n`;
  return `pipelines ${command}: internal error\n${e?.stack ?? String(err)}\n`;
}
