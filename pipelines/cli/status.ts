// `pipelines status [--url http://127.0.0.1:19100] [--watch]`: one screen on a running worker (throughput, lag,
// dead letters, retries, readiness and its reasons) from its /metrics and /readyz. Exit 0 when ready, 1 when not.
import { status } from '../observe/status.ts';
import { httpUrl } from '../settings.ts';
import { parseOptions, usage } from './args.ts';

export const HELP = 'status [--url http://127.0.0.1:19100] [--watch] [--interval ms]';

export async function statusCommand(args: string[]): Promise<number> {
  const { values } = parseOptions(args, {
    url: { type: 'string' },
    watch: { type: 'boolean' },
    interval: { type: 'string' },
  });
  const url = httpUrl(
    values.url !== undefined ? '--url' : 'PIPELINES_STATUS_URL',
    values.url ?? process.env.PIPELINES_STATUS_URL ?? 'http://127.0.0.1:19100',
    'http://127.0.0.1:19100',
  );
  const intervalMs = Number(values.interval ?? 1000);
  if (!Number.isFinite(intervalMs) || intervalMs < 0) throw usage(HELP);
  if (!values.watch) {
    const s = await status({ url, intervalMs });
    process.stdout.write(s.text);
    return s.ready ? 0 : 1;
  }
  // --watch: redraw every couple of seconds until Ctrl-C; a worker that goes away is said, not fatal.
  let stop = false;
  process.once('SIGINT', () => {
    stop = true;
  });
  const clear = process.stdout.isTTY ? '\x1b[H\x1b[2J' : '';
  let ready = false;
  while (!stop) {
    const started = Date.now();
    let text: string;
    try {
      const s = await status({ url, intervalMs });
      ready = s.ready;
      text = s.text;
    } catch (err) {
      ready = false;
      text = `${(err as Error).message}\n`;
    }
    process.stdout.write(`${clear}${new Date().toISOString()}  (Ctrl-C to stop)\n${text}`);
    if (!process.stdout.isTTY) process.stdout.write('\n');
    const wait = Math.max(0, 2000 - (Date.now() - started));
    for (let waited = 0; waited < wait && !stop; waited += 100) await new Promise((r) => setTimeout(r, 100));
  }
  return ready ? 0 : 1;
}
