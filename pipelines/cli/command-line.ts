// The `pipelines` command line: one thin module per subcommand, listed here explicitly.
import { EXIT_USAGE, exitCodeOf, failureText } from './args.ts';
import { commands } from './commands.ts';

const [name, ...args] = process.argv.slice(2);
const command = name ? commands[name] : undefined;
if (!command) {
  const list = Object.entries(commands)
    .map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`)
    .join('\n');
  // Asked for (help, --help, -h): on stdout, exit 0. A missing or unknown command: on stderr, a usage error.
  const asked = name === 'help' || name === '--help' || name === '-h';
  (asked ? process.stdout : process.stderr).write(
    `usage: pipelines <command> [options]\n\ncommands:\n${list}\n\n` +
      'pipelines <command> --help: its options. Exit codes: 0 done, 1 problems found (or the work failed), ' +
      '2 a usage error (nothing done).\n',
  );
  process.exit(asked ? 0 : EXIT_USAGE);
}
// Every subcommand: its usage on stdout, exit 0; nothing runs.
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(`${command.help}\n\n${command.summary}\n`);
  process.exit(0);
}
try {
  process.exitCode = await command.run(args);
} catch (err) {
  process.stderr.write(failureText(name!, err));
  process.exitCode = exitCodeOf(err);
}
// A client handle left open (a broker that never answers a disconnect) must not keep a finished command alive.
setTimeout(() => process.exit(), 10_000).unref();
