/**
 * Kubernetes manifests for a Flotilla application (pure: plain objects in, plain objects out; the build
 * command writes them as YAML). The shape follows the cluster design:
 *   - head: one pod running `serve run … --cluster-port` (controller, proxies, CPU replicas), a Service
 *     for HTTP (8000), gRPC (9000) and the cluster port (9100), probes on /-/healthz;
 *   - GPU agents: a StatefulSet (stable pod names = node ids) of `serve agent` pods, each asking for
 *     nvidia.com/gpu as many GPUs as the largest replica needs, enough pods for every GPU deployment's
 *     maximum replicas;
 *   - an HPA that adds agent pods on Flotilla's queue metric (flotilla_deployment_queued_requests, an
 *     External metric served by prometheus-adapter): Flotilla's autoscaler raises a deployment's target,
 *     the new replicas wait for a GPU node, the queue grows, and the HPA adds one;
 *   - a ConfigMap with the serve config that the head reads;
 *   - a Secret with the cluster token (and TLS material when given), mounted read-only (0400) by the head
 *     (--cluster-token-file, --cluster-tls-*) and the agents (--token-file, --tls-*), each pod getting
 *     only the keys it needs (the agents never see the head's key);
 *   - a NetworkPolicy on the head: the cluster port admits the agent pods only (HTTP and gRPC stay open);
 *   - a PodDisruptionBudget for the agents: node drains evict one agent at a time, so the controller can
 *     place its replicas elsewhere (none for the head: one pod, whose PDB could only block drains).
 * The head drains for HEAD_DRAIN_TIMEOUT_S on SIGTERM; its grace period leaves time to stop after that.
 */
import { createHash } from 'node:crypto';

export interface DeploymentResources {
  name: string;
  cpus: number;
  gpus: number;
  memoryMb: number;
  /** numReplicas, or autoscaling.maxReplicas. */
  maxReplicas: number;
  /** numReplicas, or autoscaling.minReplicas. */
  minReplicas: number;
}

export interface ManifestInput {
  /** Base name of every object. */
  name: string;
  namespace?: string;
  image: string;
  /** FILE:EXPORT as the head runs it, relative to workingDir in the image. */
  target: string;
  /** key=value builder arguments. */
  args: string[];
  /** Application name (the `app` label of Flotilla's metrics). */
  app: string;
  deployments: DeploymentResources[];
  /** Serve config YAML for the ConfigMap. */
  serveConfig: string;
  /** Where the repository (and the application, at the same path on every pod) lives in the image. */
  workingDir: string;
  /** The cluster port's credentials, for the Secret. */
  cluster: ClusterSecretInput;
}

/** What the cluster Secret holds: the token always; TLS material (PEM text) when given. */
export interface ClusterSecretInput {
  token: string;
  tls?: {
    /** CA that signed the head's certificate (and the agents', for mutual TLS). */
    ca: string;
    /** The head's certificate; it must name `<name>-head`, the address agents dial. */
    headCert: string;
    headKey: string;
    /** The agents' client certificate: given, the head requires one (mutual TLS). */
    agentCert?: string;
    agentKey?: string;
  };
}

/** Where the Secret is mounted in head and agent pods. */
export const CLUSTER_SECRET_DIR = '/etc/flotilla-cluster';

export interface Manifest {
  /** File name, e.g. 'head-deployment.yaml'. */
  file: string;
  object: Record<string, unknown>;
}

export const PORTS = { http: 8000, grpc: 9000, cluster: 9100 } as const;
/** Queued requests per agent pod the HPA aims at. */
const HPA_QUEUE_TARGET = '4';
/** The head's --drain-timeout; its terminationGracePeriodSeconds adds time to stop replicas after it. */
export const HEAD_DRAIN_TIMEOUT_S = 30;

export function kubernetesManifests(input: ManifestInput): Manifest[] {
  const gpuDeployments = input.deployments.filter((d) => d.gpus > 0);
  const out: Manifest[] = [
    { file: 'configmap.yaml', object: configMap(input) },
    { file: 'cluster-secret.yaml', object: clusterSecret(input) },
    { file: 'head-deployment.yaml', object: headDeployment(input) },
    { file: 'head-service.yaml', object: headService(input) },
    { file: 'head-networkpolicy.yaml', object: headNetworkPolicy(input) },
  ];
  if (gpuDeployments.length > 0) {
    const sizing = agentSizing(gpuDeployments);
    out.push(
      { file: 'gpu-agent-service.yaml', object: agentService(input) },
      { file: 'gpu-agent-statefulset.yaml', object: agentStatefulSet(input, sizing) },
      { file: 'gpu-agent-hpa.yaml', object: agentHpa(input, gpuDeployments, sizing) },
      { file: 'gpu-agent-pdb.yaml', object: agentPdb(input) },
    );
  }
  return out;
}

/** GPUs per agent pod (the largest whole-GPU need, at least 1) and pod counts for min and max replicas. */
export function agentSizing(gpuDeployments: DeploymentResources[]): {
  gpusPerPod: number;
  minPods: number;
  maxPods: number;
} {
  const gpusPerPod = Math.max(1, ...gpuDeployments.map((d) => Math.ceil(d.gpus)));
  const pods = (count: (d: DeploymentResources) => number) =>
    Math.max(1, Math.ceil(gpuDeployments.reduce((n, d) => n + count(d) * d.gpus, 0) / gpusPerPod));
  return { gpusPerPod, minPods: pods((d) => d.minReplicas), maxPods: pods((d) => d.maxReplicas) };
}

function meta(input: ManifestInput, name: string, component: string) {
  return { name, ...(input.namespace ? { namespace: input.namespace } : {}), labels: labels(input, component) };
}

function labels(input: ManifestInput, component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': input.name,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/part-of': 'flotilla',
  };
}

function configMap(input: ManifestInput) {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(input, `${input.name}-config`, 'config'),
    data: { 'serve.yaml': input.serveConfig },
  };
}

function clusterSecret(input: ManifestInput) {
  const { token, tls } = input.cluster;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(input, `${input.name}-cluster`, 'cluster'),
    type: 'Opaque',
    stringData: {
      token,
      ...(tls ? { 'ca.crt': tls.ca, 'head.crt': tls.headCert, 'head.key': tls.headKey } : {}),
      ...(tls?.agentCert && tls.agentKey ? { 'agent.crt': tls.agentCert, 'agent.key': tls.agentKey } : {}),
    },
  };
}

/** Mutual TLS: the agents have a client certificate, so the head requires one. */
function mutualTls(input: ManifestInput): boolean {
  return Boolean(input.cluster.tls?.agentCert && input.cluster.tls.agentKey);
}

/** A volume with only `keys` of the cluster Secret, read-only to the owner. */
function secretVolume(input: ManifestInput, keys: string[]) {
  return {
    name: 'cluster-secret',
    secret: { secretName: `${input.name}-cluster`, defaultMode: 0o400, items: keys.map((key) => ({ key, path: key })) },
  };
}

const secretMount = { name: 'cluster-secret', mountPath: CLUSTER_SECRET_DIR, readOnly: true };
const inSecret = (key: string) => `${CLUSTER_SECRET_DIR}/${key}`;

/** Rolls head and agents together when the Secret's content changes (both read it at start). */
function secretChecksum(input: ManifestInput): Record<string, string> {
  const digest = createHash('sha256')
    .update(JSON.stringify(clusterSecret(input).stringData))
    .digest('hex');
  return { 'flotilla.dev/cluster-secret-sha256': digest };
}

function headClusterFlags(input: ManifestInput): string[] {
  const flags = ['--cluster-token-file', inSecret('token')];
  if (input.cluster.tls)
    flags.push('--cluster-tls-cert', inSecret('head.crt'), '--cluster-tls-key', inSecret('head.key'));
  if (mutualTls(input)) flags.push('--cluster-tls-ca', inSecret('ca.crt'), '--cluster-tls-require-client-cert');
  return flags;
}

function agentClusterFlags(input: ManifestInput): string[] {
  const flags = ['--token-file', inSecret('token')];
  if (input.cluster.tls) flags.push('--tls-ca', inSecret('ca.crt'));
  if (mutualTls(input)) flags.push('--tls-cert', inSecret('agent.crt'), '--tls-key', inSecret('agent.key'));
  return flags;
}

function headDeployment(input: ManifestInput) {
  const probe = (initialDelaySeconds: number, failureThreshold: number) => ({
    httpGet: { path: '/-/healthz', port: 'http' },
    initialDelaySeconds,
    periodSeconds: 10,
    timeoutSeconds: 5,
    failureThreshold,
  });
  const cpuNeed = input.deployments.filter((d) => d.gpus === 0).reduce((n, d) => n + d.cpus * d.maxReplicas, 0);
  const container = {
    name: 'head',
    image: input.image,
    workingDir: input.workingDir,
    command: [
      'node',
      'bin/serve.js',
      'run',
      input.target,
      ...input.args,
      '--host',
      '0.0.0.0',
      '--port',
      String(PORTS.http),
      '--grpc-port',
      String(PORTS.grpc),
      '--cluster-port',
      String(PORTS.cluster),
      '--config',
      '/etc/flotilla/serve.yaml',
      '--drain-timeout',
      String(HEAD_DRAIN_TIMEOUT_S * 1000),
      ...headClusterFlags(input),
    ],
    // The head hosts only CPU replicas; GPU ones go to agents.
    env: [{ name: 'FLOTILLA_GPUS', value: '0' }],
    ports: [
      { name: 'http', containerPort: PORTS.http },
      { name: 'grpc', containerPort: PORTS.grpc },
      { name: 'cluster', containerPort: PORTS.cluster },
    ],
    // Readiness: the proxies answer once every deployment is healthy; liveness is lenient (model loads are slow).
    readinessProbe: probe(5, 3),
    livenessProbe: probe(60, 6),
    resources: { requests: { cpu: String(Math.max(1, cpuNeed)), memory: '1Gi' } },
    volumeMounts: [{ name: 'config', mountPath: '/etc/flotilla', readOnly: true }, secretMount],
  };
  const headKeys = [
    'token',
    ...(input.cluster.tls ? ['head.crt', 'head.key'] : []),
    ...(mutualTls(input) ? ['ca.crt'] : []),
  ];
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(input, `${input.name}-head`, 'head'),
    spec: {
      // One controller per cluster: a second head would place replicas of its own.
      replicas: 1,
      strategy: { type: 'Recreate' },
      selector: { matchLabels: labels(input, 'head') },
      template: {
        metadata: { labels: labels(input, 'head'), annotations: secretChecksum(input) },
        spec: {
          containers: [container],
          volumes: [{ name: 'config', configMap: { name: `${input.name}-config` } }, secretVolume(input, headKeys)],
          terminationGracePeriodSeconds: HEAD_DRAIN_TIMEOUT_S + 15,
        },
      },
    },
  };
}

function headService(input: ManifestInput) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(input, `${input.name}-head`, 'head'),
    spec: {
      selector: labels(input, 'head'),
      ports: [
        { name: 'http', port: PORTS.http, targetPort: 'http' },
        { name: 'grpc', port: PORTS.grpc, targetPort: 'grpc' },
        { name: 'cluster', port: PORTS.cluster, targetPort: 'cluster' },
      ],
    },
  };
}

/**
 * Once a NetworkPolicy selects the head, only what it allows reaches it: HTTP and gRPC from anywhere
 * (the proxies have their own authentication), the cluster port from the agent pods only.
 */
function headNetworkPolicy(input: ManifestInput) {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta(input, `${input.name}-head`, 'head'),
    spec: {
      podSelector: { matchLabels: labels(input, 'head') },
      policyTypes: ['Ingress'],
      ingress: [
        {
          ports: [
            { protocol: 'TCP', port: PORTS.http },
            { protocol: 'TCP', port: PORTS.grpc },
          ],
        },
        {
          from: [{ podSelector: { matchLabels: labels(input, 'gpu-agent') } }],
          ports: [{ protocol: 'TCP', port: PORTS.cluster }],
        },
      ],
    },
  };
}

function agentService(input: ManifestInput) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(input, `${input.name}-gpu-agent`, 'gpu-agent'),
    // Headless: it only gives the StatefulSet's pods stable names; agents dial the head, never the reverse.
    spec: { clusterIP: 'None', selector: labels(input, 'gpu-agent'), ports: [{ name: 'none', port: 9 }] },
  };
}

function agentStatefulSet(input: ManifestInput, sizing: ReturnType<typeof agentSizing>) {
  const g = String(sizing.gpusPerPod);
  const agentKeys = [
    'token',
    ...(input.cluster.tls ? ['ca.crt'] : []),
    ...(mutualTls(input) ? ['agent.crt', 'agent.key'] : []),
  ];
  const container = {
    name: 'agent',
    image: input.image,
    workingDir: input.workingDir,
    // Each agent also runs an HTTP proxy for every application (one per node, as in Ray).
    command: [
      'node',
      'bin/serve.js',
      'agent',
      '--address',
      `${input.name}-head:${PORTS.cluster}`,
      '--node-id',
      '$(POD_NAME)',
      '--gpus',
      g,
      '--connect-timeout',
      '120000',
      '--http-host',
      '0.0.0.0',
      '--http-port',
      String(PORTS.http),
      ...agentClusterFlags(input),
    ],
    ports: [{ name: 'http', containerPort: PORTS.http }],
    volumeMounts: [secretMount],
    env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
    resources: { limits: { 'nvidia.com/gpu': g }, requests: { 'nvidia.com/gpu': g, cpu: '2', memory: '8Gi' } },
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: meta(input, `${input.name}-gpu-agent`, 'gpu-agent'),
    spec: {
      serviceName: `${input.name}-gpu-agent`,
      replicas: sizing.minPods,
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: labels(input, 'gpu-agent') },
      template: {
        metadata: { labels: labels(input, 'gpu-agent'), annotations: secretChecksum(input) },
        spec: {
          containers: [container],
          volumes: [secretVolume(input, agentKeys)],
          tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
          // SIGTERM makes the agent kill its replicas; the head replaces them elsewhere.
          terminationGracePeriodSeconds: 30,
        },
      },
    },
  };
}

function agentHpa(input: ManifestInput, gpuDeployments: DeploymentResources[], sizing: ReturnType<typeof agentSizing>) {
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: meta(input, `${input.name}-gpu-agent`, 'gpu-agent'),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'StatefulSet', name: `${input.name}-gpu-agent` },
      minReplicas: sizing.minPods,
      maxReplicas: Math.max(sizing.minPods, sizing.maxPods),
      // Needs prometheus-adapter exposing Flotilla's gauge as an External metric (deploy/prometheus-adapter/rules.yaml).
      metrics: gpuDeployments.map((d) => ({
        type: 'External',
        external: {
          metric: {
            name: 'flotilla_deployment_queued_requests',
            selector: { matchLabels: { app: input.app, deployment: d.name } },
          },
          target: { type: 'AverageValue', averageValue: HPA_QUEUE_TARGET },
        },
      })),
      behavior: { scaleDown: { stabilizationWindowSeconds: 300 } },
    },
  };
}

function agentPdb(input: ManifestInput) {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(input, `${input.name}-gpu-agent`, 'gpu-agent'),
    spec: { maxUnavailable: 1, selector: { matchLabels: labels(input, 'gpu-agent') } },
  };
}
