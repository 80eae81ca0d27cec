// The rendered manifests against a real kube-apiserver (built by deploy/local/deploy-tools.sh) on a real etcd,
// with the Strimzi KafkaTopic, KEDA ScaledObject and Prometheus Operator PodMonitor CRDs installed: server-side
// dry run, then a real apply, and planted mistakes refused. No kubelet and no controllers: nothing runs pods.
import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CACHE, describeDeploy, env, ok, type Ran, ROOT, requireTool, run } from './tools.ts';

jest.setTimeout(180_000);
const K8S = join(ROOT, 'deploy/k8s');

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });
}

describeDeploy('a real kube-apiserver', () => {
  let dir: string;
  let kubeconfig: string;
  const children: ChildProcess[] = [];
  const kubectl = (args: string[], input?: string): Ran =>
    run(requireTool(join(CACHE, 'bin/kubectl')), ['--kubeconfig', kubeconfig, ...args], {
      ...(input === undefined ? {} : { input }),
      timeoutMs: 60_000,
    });

  function start(name: string, cmd: string, args: string[]): void {
    const log = createWriteStream(join(dir, `${name}.log`));
    const child = spawn(cmd, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    children.push(child);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pipelines-apiserver-'));
    const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
    start('etcd', 'etcd', [
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      '--log-level=warn',
    ]);
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    const token = 'pipelines-deploy-test';
    writeFileSync(join(dir, 'tokens.csv'), `${token},admin,admin,system:masters\n`);
    start('kube-apiserver', requireTool(join(CACHE, 'bin/kube-apiserver')), [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'certs')}`,
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      '--service-cluster-ip-range=10.96.0.0/16',
    ]);
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          { name: 'test', cluster: { server: `https://127.0.0.1:${apiPort}`, 'insecure-skip-tls-verify': true } },
        ],
        users: [{ name: 'admin', user: { token } }],
        contexts: [{ name: 'test', context: { cluster: 'test', user: 'admin' } }],
        'current-context': 'test',
      }),
    );
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (kubectl(['get', '--raw', '/readyz']).stdout.trim() === 'ok') break;
      if (Date.now() > deadline) {
        const logs = ['etcd', 'kube-apiserver'].map((n) => readFileSync(join(dir, `${n}.log`), 'utf8').slice(-3000));
        throw new Error(`kube-apiserver was not ready in 90 s:\n${logs.join('\n---\n')}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    // The CRDs, server-side (the KEDA one is too large for client-side apply's annotation).
    const crds = join(CACHE, 'crds/yaml');
    for (const f of readdirSync(crds)) ok(kubectl(['apply', '--server-side', '-f', join(crds, f)]));
    ok(kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']));
    // The namespaces, with the Pod Security "restricted" profile enforced and warned about.
    for (const ns of ['pipelines', 'pipelines-dev']) {
      ok(kubectl(['create', 'namespace', ns]));
      ok(
        kubectl([
          'label',
          'namespace',
          ns,
          'pod-security.kubernetes.io/enforce=restricted',
          'pod-security.kubernetes.io/warn=restricted',
        ]),
      );
    }
  });

  afterAll(async () => {
    for (const c of children.reverse()) {
      c.kill('SIGTERM');
      await new Promise((r) => (c.exitCode === null ? c.once('exit', r) : r(null)));
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // --warnings-as-errors: a Pod Security "restricted" warning on a Deployment's pod template fails the apply.
  const apply = (args: string[], input?: string) => kubectl(['apply', '--warnings-as-errors', ...args], input);

  test.each(['base', 'overlays/dev', 'overlays/prod'])('%s: kubectl apply --dry-run=server accepts it', (k) => {
    const r = ok(apply(['--dry-run=server', '-k', join(K8S, k)]));
    expect(r.stdout).toMatch(/kafkatopic.kafka.strimzi.io\/orders.events created \(server dry run\)/);
  });

  test('the prod overlay applied for real: every object is stored as rendered', () => {
    ok(apply(['-k', join(K8S, 'overlays/prod')]));
    const built = ok(kubectl(['kustomize', join(K8S, 'overlays/prod')])).stdout;
    const expected = parseAllDocuments(built).map((d) => d.toJS() as { kind: string; metadata: { name: string } });
    for (const kind of ['KafkaTopic', 'ScaledObject', 'PodMonitor', 'Deployment', 'NetworkPolicy']) {
      const stored = JSON.parse(ok(kubectl(['get', kind, '-n', 'pipelines', '-o', 'json'])).stdout) as {
        items: { metadata: { name: string } }[];
      };
      const names = (list: { metadata: { name: string } }[]) => list.map((o) => o.metadata.name).sort();
      expect(names(stored.items)).toEqual(names(expected.filter((o) => o.kind === kind)));
    }
    // The API server defaulted and kept what the render said: the Strimzi v1 object reads back as v1.
    const topic = JSON.parse(
      ok(kubectl(['get', 'kafkatopic', 'orders.events', '-n', 'pipelines', '-o', 'json'])).stdout,
    );
    expect(topic.apiVersion).toBe('kafka.strimzi.io/v1');
  });

  test('the Strimzi v1beta2 render is served too', async () => {
    const topics = readFileSync(join(K8S, 'base/topics.yaml'), 'utf8').replaceAll(
      'kafka.strimzi.io/v1\n',
      'kafka.strimzi.io/v1beta2\n',
    );
    // Not --warnings-as-errors: Strimzi marks v1beta2 deprecated, which the server says.
    const r = ok(kubectl(['apply', '--dry-run=server', '-f', '-'], topics));
    expect(r.stdout).toMatch(/orders.events (created|configured|unchanged) \(server dry run\)/);
    expect(r.stderr).toMatch(/v1beta2 of the KafkaTopic API is deprecated/);
  });

  test('planted mistakes are refused: a misspelt field, a string for partitions, a privileged container', () => {
    const deployment = readFileSync(join(K8S, 'base/order-analytics.yaml'), 'utf8');
    const typo = apply(
      ['--dry-run=server', '-f', '-'],
      deployment.replace('revisionHistoryLimit:', 'revisionHistoryLimt:'),
    );
    expect(typo.status).not.toBe(0);
    expect(typo.stderr).toMatch(/unknown field "spec.revisionHistoryLimt"/);

    const topics = readFileSync(join(K8S, 'base/topics.yaml'), 'utf8');
    const wrong = apply(['--dry-run=server', '-f', '-'], topics.replace('partitions: 3', 'partitions: three'));
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toMatch(/spec.partitions: Invalid value: "string"/);

    const root = apply(
      ['--dry-run=server', '-f', '-'],
      deployment.replace('allowPrivilegeEscalation: false', 'allowPrivilegeEscalation: true'),
    );
    expect(root.status).not.toBe(0);
    expect(root.stderr).toMatch(/violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false/);
  });
});
