// Faults as an operator causes them: the local stack's services stopped and started with its own script, and a
// broker client quota that slows one client's producer (Kafka's ConfigCommand from the stack's broker jars).
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connectionsFrom } from '../../pipelines/kafka/connection.ts';

const execFileAsync = promisify(execFile);

/** `deploy/local/stack up|down <service>`; resolves with the milliseconds it took (up: until healthy). */
export async function service(action: 'up' | 'down', name: 'kafka' | 'registry'): Promise<number> {
  const started = Date.now();
  try {
    await execFileAsync('bash', ['deploy/local/stack', action, name], { encoding: 'utf8' });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`stack ${action} ${name} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
  return Date.now() - started;
}

/** Kafka's ConfigCommand from the local stack's broker jars, as an operator would run it. */
/**
 * Stops a service's process in its tracks (SIGSTOP) for a while, then lets it go on: connections hang instead of
 * being refused, and the local registry, which keeps its schemas in memory, comes back with them.
 */
export async function pause(name: 'registry', ms: number): Promise<void> {
  const { stdout } = await execFileAsync('bash', ['deploy/local/stack', 'status', name], { encoding: 'utf8' });
  const pid = Number(/pid (\d+)/.exec(stdout)?.[1]);
  if (!pid) throw new Error(`no pid for ${name} in: ${stdout}`);
  process.kill(pid, 'SIGSTOP');
  try {
    await new Promise((r) => setTimeout(r, ms));
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

export function clientQuota(clientId: string, bytesPerSecond: number | undefined): void {
  const cache = process.env.PIPELINES_CACHE ?? join(process.env.HOME ?? '', '.cache', 'order-pipelines');
  const kafkaDir = readdirSync(cache).find((d) => d.startsWith('kafka-'));
  const java = readFileSync(join(cache, 'java-bin'), 'utf8').trim() || 'java';
  const change =
    bytesPerSecond === undefined
      ? ['--delete-config', 'producer_byte_rate']
      : ['--add-config', `producer_byte_rate=${bytesPerSecond}`];
  execFileSync(
    java,
    [
      '-cp',
      join(cache, kafkaDir!, 'libs', '*'),
      'kafka.admin.ConfigCommand',
      '--bootstrap-server',
      connectionsFrom(process.env).kafka.brokers.join(','),
      '--alter',
      '--entity-type',
      'clients',
      '--entity-name',
      clientId,
      ...change,
    ],
    { stdio: 'ignore' },
  );
}
