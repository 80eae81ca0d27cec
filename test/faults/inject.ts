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
