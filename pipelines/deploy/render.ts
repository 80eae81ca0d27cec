// Topology files → Kubernetes objects: per topology a ConfigMap (the topology, its schemas and modules), a
// Deployment, a PodDisruptionBudget, a Service, a PodMonitor, a KEDA ScaledObject and a NetworkPolicy; a Strimzi
// KafkaTopic for every topic the topologies own (declared, repartition topics, state changelogs). Pure: files in, objects out.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, normalize, relative, resolve } from 'node:path';
import type { Topology } from '../compile/schema.ts';
import { loadPlan, loadStages, ownedTopics } from '../runtime/load.ts';

/** A Kubernetes object as rendered: plain data, keys in the order they are written. */
export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string } & Record<string, unknown>;
} & Record<string, unknown>;

export interface RenderOptions {
  /** Image of the worker (the `server` target: ClickHouse over HTTP). */
  image: string;
  namespace: string;
  /** Strimzi API of the KafkaTopic objects: v1 (Strimzi 0.49+) or v1beta2 (until 0.52). */
  strimziApi: 'v1' | 'v1beta2';
  /** The Strimzi `Kafka` cluster the topics belong to (label strimzi.io/cluster). */
  kafkaCluster: string;
  /** Consumer lag per replica above which KEDA adds a replica. */
  lagThreshold: number;
  /** Secret with the connection settings (PIPELINES_BROKERS, PIPELINES_REGISTRY_URL, PIPELINES_CLICKHOUSE_URL…). */
  connectionSecret: string;
  memoryLimitMiB: number;
  memoryRequestMiB: number;
  cpuRequest: string;
}

/**
 * Memory, measured in the image on this project's machine (deploy/README.md, "Memory"): catching up on a backlog of
 * 855k order events with the V8 heap capped at 60% of the limit, order-forward (Kafka to Kafka) peaked at 1.3 GiB
 * resident and order-analytics (embedded engine in the process) at 1.5 GiB; under a 1 GiB limit order-forward was
 * OOM-killed. Most of it is outside the heap (librdkafka's queues, the sinks' buffered rows), and it grows with
 * the backlog up to the worker's buffer bounds: 2 GiB is the limit, the request half of it.
 */
export const DEFAULTS: Omit<RenderOptions, 'image'> = {
  namespace: 'pipelines',
  strimziApi: 'v1',
  kafkaCluster: 'kafka',
  lagThreshold: 10_000,
  connectionSecret: 'pipelines-connections',
  memoryLimitMiB: 2048,
  memoryRequestMiB: 1024,
  cpuRequest: '500m',
};

/** The worker's bound on a clean stop (finish the batch, flush, commit, leave the group): runtime/worker.ts. */
export const WORKER_SHUTDOWN_BOUND_S = 20;
export const METRICS_PORT = 9100;
/** Ports the workers may connect to: Kafka (plain, TLS), the schema registry, ClickHouse (HTTP, HTTPS). */
export const EGRESS_PORTS = { kafka: [9092, 9093], registry: [8080, 8081], clickhouse: [8123, 8443] };

export interface RenderedTopology {
  name: string;
  file: string;
  objects: K8sObject[];
}

export interface Rendered {
  topologies: RenderedTopology[];
  /** One KafkaTopic per topic, over all topologies. */
  topics: K8sObject[];
}

/** A topic as the topologies declare it; two topologies declaring one topic differently is an error. */
interface TopicDecl {
  name: string;
  partitions: number;
  replicas: number;
  cleanup: string;
  retentionMs?: number;
  minInSync?: number;
  declaredBy: string;
}

export async function render(files: string[], opts: RenderOptions): Promise<Rendered> {
  const topologies: RenderedTopology[] = [];
  const topics = new Map<string, TopicDecl>();
  for (const file of [...files].sort()) {
    // An empty environment: `${VAR:-default}` takes its default, so a render does not depend on the shell.
    const stages = await loadStages(file, { env: {} });
    // The whole topology, as the worker reads it: a stage's own leaves out the files of the others (the schemas
    // of spec.sources, the modules of later stages), and the ConfigMap must hold them all.
    const t = (await loadPlan(file, { env: {} })).topology;
    const declared = ownedTopics(stages).map((c) => ({
      ...c,
      cleanup: c.cleanup ?? 'delete',
      declaredBy: t.metadata.name,
    }));
    for (const d of declared) addTopic(topics, d);
    const sources = stages.map((s) => s.plan.topology.spec.source);
    topologies.push({ name: t.metadata.name, file, objects: topologyObjects(file, t, declared, sources, opts) });
  }
  const topicObjects = [...topics.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((d) => kafkaTopic(d, opts));
  return { topologies, topics: topicObjects };
}

function addTopic(topics: Map<string, TopicDecl>, d: TopicDecl): void {
  const seen = topics.get(d.name);
  if (!seen) {
    topics.set(d.name, d);
    return;
  }
  const keys = ['partitions', 'replicas', 'cleanup', 'retentionMs', 'minInSync'] as const;
  const differ = keys.filter((k) => seen[k] !== d[k]);
  if (differ.length > 0) {
    throw new Error(
      `topic '${d.name}' is declared differently by ${seen.declaredBy} and ${d.declaredBy} (${differ.join(', ')})`,
    );
  }
}

/** A Kubernetes name for a topic: lower case, [a-z0-9.-]; Strimzi keeps the real name in spec.topicName. */
/**
 * The smallest pod `--memory-limit` renders. In the image, catching up on a 285k-event backlog, order-forward was
 * killed by the limit in 256Mi and 320Mi pods and in 2 of 8 runs at 384Mi (peaks 305-435 MiB, much of it outside
 * the V8 heap: with a 120 MB heap cap 2 of 3 were killed); at 512Mi it caught up every time, peaking at 417-448 MiB,
 * and on 855k events at 485-555 MiB with the image's MALLOC_ARENA_MAX (test/bench/results/2026-12-07-produce.md).
 */
export const MIN_MEMORY_LIMIT_MIB = 512;

/**
 * The V8 bounds of a worker in a container of `limitMiB`: the heap at 60%, the rest left to librdkafka's buffers
 * and the code. V8's young generation at its default (16 MiB semi-spaces) is a large share of a small pod: below
 * 2 GiB it shrinks with the limit. At 256Mi (2 MiB) with a 128 MB heap, L2 peaked at 254 MB instead of 517 MB, at
 * 0.83x the events/s (test/bench/results/2026-12-07-batch.md).
 */
export function nodeOptionsFor(limitMiB: number): string {
  const semiMiB = Math.max(1, Math.min(16, Math.floor(limitMiB / 128)));
  return `--max-old-space-size=${Math.floor(limitMiB * 0.6)}${semiMiB < 16 ? ` --max-semi-space-size=${semiMiB}` : ''}`;
}

export function topicObjectName(topic: string): string {
  const n = topic
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[.-]+|[.-]+$/g, '');
  if (n === topic) return n;
  // Different names must stay different objects: a short hash of the real name disambiguates.
  return `${n.slice(0, 240)}-${createHash('sha256').update(topic).digest('hex').slice(0, 8)}`;
}

function kafkaTopic(d: TopicDecl, o: RenderOptions): K8sObject {
  const name = topicObjectName(d.name);
  const config: Record<string, string | number> = { 'cleanup.policy': d.cleanup };
  if (d.retentionMs !== undefined) config['retention.ms'] = d.retentionMs;
  if (d.minInSync !== undefined) config['min.insync.replicas'] = d.minInSync;
  return {
    apiVersion: `kafka.strimzi.io/${o.strimziApi}`,
    kind: 'KafkaTopic',
    metadata: {
      name,
      namespace: o.namespace,
      labels: { 'strimzi.io/cluster': o.kafkaCluster, 'app.kubernetes.io/part-of': 'order-pipelines' },
    },
    spec: { ...(name !== d.name ? { topicName: d.name } : {}), partitions: d.partitions, replicas: d.replicas, config },
  };
}

/**
 * The files a topology needs at run time, relative to its folder: the topology itself, then every string of
 * its spec that names a file beside it (Avro schemas, modules). Sorted, so that a render is stable.
 */
export function topologyFiles(file: string, t: Topology): string[] {
  const dir = resolve(file, '..');
  const found = new Set<string>();
  const visit = (v: unknown): void => {
    if (typeof v === 'string') {
      if (!/\.[A-Za-z0-9]+$/.test(v) || v.includes('\n')) return;
      const abs = resolve(dir, v);
      const rel = relative(dir, abs);
      if (!rel.startsWith('..') && existsSync(abs) && statSync(abs).isFile()) found.add(normalize(rel));
    } else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') Object.values(v).forEach(visit);
  };
  visit(t.spec);
  return [basename(file), ...[...found].sort()];
}

/** ConfigMap keys cannot hold '/': each file gets a flat key and its path back through the volume's items. */
function configMapKey(path: string): string {
  return path.replace(/\//g, '_');
}

/** `sources`: what each stage reads (the source, then each repartition topic), for the lag scaler. */
function topologyObjects(
  file: string,
  t: Topology,
  declared: TopicDecl[],
  sources: ReadonlyArray<Topology['spec']['source']>,
  o: RenderOptions,
): K8sObject[] {
  const name = t.metadata.name;
  const dir = resolve(file, '..');
  const files = topologyFiles(file, t);
  const data: Record<string, string> = {};
  for (const f of files) data[configMapKey(f)] = readFileSync(join(dir, f), 'utf8');
  const configHash = createHash('sha256').update(JSON.stringify(data)).digest('hex').slice(0, 16);
  const source = declared.find((d) => d.name === t.spec.source.topic);
  // More replicas than source partitions would sit idle: KEDA scales up to the partition count.
  const maxReplicas = source?.partitions ?? 1;
  const labels = {
    'app.kubernetes.io/name': 'pipelines-worker',
    'app.kubernetes.io/instance': name,
    'app.kubernetes.io/part-of': 'order-pipelines',
    'app.kubernetes.io/component': 'worker',
  };
  const selector = { 'app.kubernetes.io/name': 'pipelines-worker', 'app.kubernetes.io/instance': name };
  const meta = (suffix = '') => ({ name: `${name}${suffix}`, namespace: o.namespace, labels });
  const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path, port: 'metrics' },
    periodSeconds,
    timeoutSeconds: 3,
    failureThreshold,
  });
  const nodeOptions = nodeOptionsFor(o.memoryLimitMiB);

  const configMap: K8sObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta('-topology'), data };
  const deployment: K8sObject = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(),
    spec: {
      // No replicas: KEDA owns the count (1 on creation), and a re-apply must not reset what it scaled to.
      revisionHistoryLimit: 5,
      selector: { matchLabels: selector },
      // One new worker before an old one leaves: the group rebalances, nothing stops reading for long.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: {
          labels,
          annotations: { 'pipelines/topology-hash': configHash },
        },
        spec: {
          automountServiceAccountToken: false,
          // Above the worker's own bound on a clean stop, so that a rolling upgrade commits before the kill.
          terminationGracePeriodSeconds: WORKER_SHUTDOWN_BOUND_S + 25,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 10001,
            runAsGroup: 10001,
            fsGroup: 10001,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: 'worker',
              image: o.image,
              imagePullPolicy: 'IfNotPresent',
              args: ['run', `/topologies/${basename(file)}`],
              ports: [{ name: 'metrics', containerPort: METRICS_PORT, protocol: 'TCP' }],
              env: [
                { name: 'PIPELINES_METRICS_ADDRESS', value: `0.0.0.0:${METRICS_PORT}` },
                { name: 'PIPELINES_CLIENT_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                // The V8 heap stays well inside the memory limit; the rest is librdkafka's buffers and the code.
                { name: 'NODE_OPTIONS', value: nodeOptions },
              ],
              envFrom: [{ secretRef: { name: o.connectionSecret } }],
              resources: {
                requests: { cpu: o.cpuRequest, memory: `${o.memoryRequestMiB}Mi` },
                limits: { memory: `${o.memoryLimitMiB}Mi` },
              },
              // Tables load before the group is joined: allow a few minutes to start before liveness counts.
              startupProbe: probe('/healthz', 5, 60),
              livenessProbe: probe('/healthz', 10, 3),
              readinessProbe: probe('/readyz', 5, 3),
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [
                { name: 'topology', mountPath: '/topologies', readOnly: true },
                { name: 'tmp', mountPath: '/tmp' },
              ],
            },
          ],
          volumes: [
            {
              name: 'topology',
              configMap: { name: `${name}-topology`, items: files.map((f) => ({ key: configMapKey(f), path: f })) },
            },
            { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
          ],
        },
      },
    },
  };
  const pdb: K8sObject = {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(),
    spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
  };
  const service: K8sObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(),
    spec: {
      selector,
      ports: [{ name: 'metrics', port: METRICS_PORT, targetPort: 'metrics', protocol: 'TCP' }],
    },
  };
  const podMonitor: K8sObject = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PodMonitor',
    metadata: meta(),
    spec: {
      selector: { matchLabels: selector },
      podMetricsEndpoints: [{ port: 'metrics', path: '/metrics', interval: '15s' }],
    },
  };
  const scaledObject: K8sObject = {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: meta(),
    spec: {
      scaleTargetRef: { name },
      minReplicaCount: 1,
      maxReplicaCount: maxReplicas,
      pollingInterval: 30,
      // Scale down slowly: each change is a rebalance of the group.
      cooldownPeriod: 300,
      // One trigger per stage: the lag of a repartition topic needs workers as much as the source's.
      triggers: sources.map((source) => ({
        type: 'kafka',
        metadata: {
          bootstrapServersFromEnv: 'PIPELINES_BROKERS',
          consumerGroup: source.group,
          topic: source.topic,
          lagThreshold: String(o.lagThreshold),
          offsetResetPolicy: source.start === 'latest' ? 'latest' : 'earliest',
          allowIdleConsumers: 'false',
        },
      })),
    },
  };
  const ports = (list: number[]) => list.map((port) => ({ protocol: 'TCP', port }));
  const networkPolicy: K8sObject = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta(),
    spec: {
      podSelector: { matchLabels: selector },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ ports: [{ protocol: 'TCP', port: METRICS_PORT }] }],
      egress: [
        { ports: [...ports(EGRESS_PORTS.kafka), ...ports(EGRESS_PORTS.registry), ...ports(EGRESS_PORTS.clickhouse)] },
        {
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
      ],
    },
  };
  return [configMap, deployment, pdb, service, podMonitor, scaledObject, networkPolicy];
}
