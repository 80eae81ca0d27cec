// Shared by the deploy tests: where deploy/local/deploy-tools.sh put the tools, how to run them, and the
// switch that skips the stage (PIPELINES_SKIP_DEPLOY=1). Without the switch a missing tool fails the tests.
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '../..');
export const CACHE = join(process.env.PIPELINES_CACHE || join(homedir(), '.cache/order-pipelines'), 'deploy');
export const KUBE_SCHEMA_VERSION = process.env.KUBE_SCHEMA_VERSION || '1.36.0';
/** Every example topology: deploy/k8s is their render (`pipelines deploy render topologies/`). */
export const TOPOLOGIES = readdirSync(join(ROOT, 'topologies'))
  .filter((f) => f.endsWith('.yaml') && !f.endsWith('.test.yaml'))
  .sort()
  .map((f) => join(ROOT, 'topologies', f));
/** The analytics topologies the Compose stack runs a worker for (the sagas' need their participants' demo). */
export const COMPOSE_TOPOLOGIES = ['order-analytics', 'order-enrichment', 'order-forward', 'order-status'];

export const SKIP = process.env.PIPELINES_SKIP_DEPLOY === '1';
if (SKIP) console.log('PIPELINES_SKIP_DEPLOY=1: the deploy stage (image, compose, manifests validators) is skipped');

/** `describe` that skips, saying why, when the deploy stage is switched off. */
export const describeDeploy: jest.Describe = SKIP ? describe.skip : describe;

export const env: NodeJS.ProcessEnv = {
  ...process.env,
  PATH: [join(CACHE, 'bin'), join(CACHE, 'py/bin'), process.env.PATH].join(delimiter),
  PYTHONPATH: join(CACHE, 'py'),
  CONTAINERS_CONF: join(CACHE, 'containers.conf'),
};

export interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr, for assertion messages. */
  output: string;
}

export function run(cmd: string, args: string[], opts: { input?: string; cwd?: string; timeoutMs?: number } = {}): Ran {
  const r: SpawnSyncReturns<string> = spawnSync(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    env,
    input: opts.input,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    timeout: opts.timeoutMs ?? 120_000,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, output: `${r.stdout}\n${r.stderr}` };
}

/** Fails with the tool's output when it did not succeed. */
export function ok(r: Ran): Ran {
  if (r.status !== 0) throw new Error(`exit ${r.status}:\n${r.output.slice(-4000)}`);
  return r;
}

export function requireTool(path: string): string {
  if (!existsSync(path)) throw new Error(`${path} is missing: run bash deploy/local/deploy-tools.sh`);
  return path;
}

/** kubeconform -strict against the offline Kubernetes and CRD schemas; files, or '-' with input. */
export function kubeconform(files: string[], input?: string): Ran {
  const schemas = join(CACHE, 'schemas');
  requireTool(join(schemas, `v${KUBE_SCHEMA_VERSION}-standalone-strict`));
  return run(
    requireTool(join(CACHE, 'bin/kubeconform')),
    [
      '-strict',
      '-summary',
      '-kubernetes-version',
      KUBE_SCHEMA_VERSION,
      '-schema-location',
      `${schemas}/{{.NormalizedKubernetesVersion}}-standalone{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json`,
      '-schema-location',
      `${join(CACHE, 'crds/schemas')}/{{.Group}}-{{.ResourceKind}}-{{.ResourceAPIVersion}}.json`,
      ...files,
    ],
    input === undefined ? {} : { input },
  );
}
