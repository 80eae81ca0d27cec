// Small helpers shared by the subcommands: options and user-facing errors.

/** A subcommand of `pipelines`, as listed in commands.ts. */
export interface Command {
  summary: string;
  /** Resolves to the process exit code. */
  run(args: string[]): Promise<number>;
}

export function usage(text: string): Error {
  return Object.assign(new Error(`usage: pipelines ${text}`), { userFacing: true });
}

export function userError(message: string): Error {
  return Object.assign(new Error(message), { userFacing: true });
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
