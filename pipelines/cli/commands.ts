// The literal list of subcommands: adding one means adding a line here.
import { demo } from './demo.ts';
import { dlq } from './dlq.ts';

export interface Command {
  summary: string;
  /** Resolves to the process exit code. */
  run(args: string[]): Promise<number>;
}

export const commands: Record<string, Command> = {
  demo,
  dlq,
};
