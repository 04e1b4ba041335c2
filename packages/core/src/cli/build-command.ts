/**
 * `serve build FILE:EXPORT [key=value ...] --out DIR [--image IMG]`: loads the application (to read each
 * deployment's resources and replica bounds) and writes Kubernetes manifests (cluster/k8s-manifests.ts)
 * as YAML files plus a kustomization.yaml, so `kubectl apply -k DIR` deploys it.
 *
 * The cluster Secret (cluster-secret.yaml, written with mode 0600) holds a cluster token, generated on the
 * first build and kept from DIR's existing Secret on later ones (so re-applying does not lock running
 * agents out), and the TLS material given by --cluster-tls-* (cluster-options.ts).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { buildGraph } from '../application.js';
import { loadServeConfig, type ServeConfig } from '../config.js';
import { buildSpecs } from '../controller/application-state.js';
import { kubernetesManifests, type ClusterSecretInput, type DeploymentResources } from '../cluster/k8s-manifests.js';
import { generateToken, tokenProblem } from '../cluster/cluster-token.js';
import { loadApplication, parseAppSpec, parseKeyValues } from './app-loader.js';
import { CliError, causeOf } from './cli-error.js';

export interface BuildOptions {
  out: string;
  /** Default: 'kubernetes' (the only one). */
  target?: string;
  /** Default: defaultImage(), the tag the Dockerfile's instructions build (`flotilla:<version>`). */
  image?: string;
  /** Default: 'flotilla'. */
  name?: string;
  namespace?: string;
  config?: string;
  /** Repository root inside the image. Default: '/app'. */
  workdir?: string;
  /** PEM files for TLS on the cluster port: CA, the head's certificate and key (it must name NAME-head). */
  clusterTlsCa?: string;
  clusterTlsCert?: string;
  clusterTlsKey?: string;
  /** The agents' client certificate and key (signed by the CA): mutual TLS. */
  clusterTlsAgentCert?: string;
  clusterTlsAgentKey?: string;
}

export async function buildCommand(
  target: string,
  words: string[],
  opts: BuildOptions,
  cwd = process.cwd(),
): Promise<string> {
  if ((opts.target ?? 'kubernetes') !== 'kubernetes') {
    throw new CliError(`serve build cannot target '${opts.target}'.`, 'Use --target kubernetes (the default).', 2);
  }
  const spec = parseAppSpec(target, cwd);
  const args = parseKeyValues(words);
  const app = await loadApplication(spec, args);
  const config = opts.config ? loadServeConfig(opts.config) : undefined;
  const appName = config?.applications[0]?.name ?? (spec.exportName === 'app' ? 'default' : spec.exportName);
  const deployments = resourcesOf(appName, app, config);
  const relTarget = `${path.relative(cwd, spec.file)}:${spec.exportName}`;
  const cluster = clusterSecretInput(opts);
  const manifests = kubernetesManifests({
    name: opts.name ?? 'flotilla',
    namespace: opts.namespace,
    image: opts.image ?? defaultImage(),
    target: relTarget,
    args: words,
    app: appName,
    deployments,
    workingDir: opts.workdir ?? '/app',
    serveConfig: opts.config ? readFileSync(opts.config, 'utf8') : defaultConfig(appName, relTarget, args),
    cluster,
  });
  const { stringify } = yaml();
  mkdirSync(opts.out, { recursive: true });
  for (const m of manifests) {
    // The Secret's file holds the token and keys: owner-only, like any key file.
    const secret = m.object.kind === 'Secret';
    writeFileSync(path.join(opts.out, m.file), stringify(m.object), secret ? { mode: 0o600 } : {});
  }
  writeFileSync(
    path.join(opts.out, 'kustomization.yaml'),
    stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: manifests.map((m) => m.file),
    }),
  );
  const gpu = deployments.filter((d) => d.gpus > 0).map((d) => `${d.name} (${d.gpus} GPU × ≤${d.maxReplicas})`);
  return (
    `Wrote ${manifests.length + 1} files to ${opts.out}: ${manifests.map((m) => m.file).join(', ')}, kustomization.yaml\n` +
    `GPU deployments on agents: ${gpu.join(', ') || 'none (no agent StatefulSet or HPA)'}\n` +
    `Cluster port: token in cluster-secret.yaml (keep it out of version control), ${
      cluster.tls
        ? cluster.tls.agentCert
          ? 'mutual TLS'
          : 'TLS'
        : 'no TLS (pass --cluster-tls-ca/--cluster-tls-cert/--cluster-tls-key to encrypt it)'
    }; a NetworkPolicy admits only the agents (docs/security.md).\n` +
    `Apply with \`kubectl apply -k ${opts.out}\`; the HPA needs prometheus-adapter with deploy/prometheus-adapter/rules.yaml (deploy/README.md).\n`
  );
}

/** The token (kept from an earlier build in the same directory) and the TLS files' PEM text. */
function clusterSecretInput(opts: BuildOptions): ClusterSecretInput {
  const token = existingToken(path.join(opts.out, 'cluster-secret.yaml')) ?? generateToken();
  const tlsFiles = [opts.clusterTlsCa, opts.clusterTlsCert, opts.clusterTlsKey];
  if (!tlsFiles.some(Boolean)) {
    if (opts.clusterTlsAgentCert || opts.clusterTlsAgentKey)
      throw new CliError(
        'Agent certificates need cluster TLS.',
        'Pass --cluster-tls-ca, --cluster-tls-cert and --cluster-tls-key too.',
        2,
      );
    return { token };
  }
  if (!tlsFiles.every(Boolean))
    throw new CliError(
      'Cluster TLS needs all of --cluster-tls-ca, --cluster-tls-cert and --cluster-tls-key.',
      `The certificate must name ${opts.name ?? 'flotilla'}-head, the address agents dial (docs/security.md).`,
      2,
    );
  if (Boolean(opts.clusterTlsAgentCert) !== Boolean(opts.clusterTlsAgentKey))
    throw new CliError(
      '--cluster-tls-agent-cert and --cluster-tls-agent-key go together.',
      'Pass both, or neither.',
      2,
    );
  return {
    token,
    tls: {
      ca: pemFile(opts.clusterTlsCa!),
      headCert: pemFile(opts.clusterTlsCert!),
      headKey: pemFile(opts.clusterTlsKey!),
      ...(opts.clusterTlsAgentCert
        ? { agentCert: pemFile(opts.clusterTlsAgentCert), agentKey: pemFile(opts.clusterTlsAgentKey!) }
        : {}),
    },
  };
}

function existingToken(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const token = (yaml().parse(readFileSync(file, 'utf8')) as { stringData?: { token?: unknown } })?.stringData?.token;
    return typeof token === 'string' && tokenProblem(token) === null ? token : undefined;
  } catch {
    return undefined;
  }
}

function pemFile(file: string): string {
  try {
    const text = readFileSync(file, 'utf8');
    if (!text.includes('-----BEGIN ')) throw new Error('not PEM');
    return text;
  } catch (err) {
    throw new CliError(
      `Cannot use ${file} for cluster TLS: ${causeOf(err)}`,
      'Pass PEM files (openssl writes them).',
      2,
    );
  }
}

function resourcesOf(
  appName: string,
  app: Parameters<typeof buildGraph>[1],
  config: ServeConfig | undefined,
): DeploymentResources[] {
  try {
    return buildSpecs(appName, buildGraph(appName, app), config).map(({ name, options: o }) => ({
      name,
      cpus: o.resources.cpus,
      gpus: o.resources.gpus,
      memoryMb: o.resources.memoryMb,
      maxReplicas: o.autoscaling ? o.autoscaling.maxReplicas : (o.numReplicas as number),
      minReplicas: o.autoscaling ? o.autoscaling.minReplicas : (o.numReplicas as number),
    }));
  } catch (err) {
    throw new CliError(`Cannot resolve the deployments' options: ${causeOf(err)}`, 'Fix the option named above.');
  }
}

function defaultConfig(app: string, importPath: string, args: Record<string, string>): string {
  return yaml().stringify({
    applications: [
      { name: app, route_prefix: '/', import_path: importPath, ...(Object.keys(args).length > 0 ? { args } : {}) },
    ],
  });
}

/**
 * `flotilla:<the repository's version>`, as the Dockerfile's header builds it (`docker build -t flotilla:0.1.0 .`):
 * a fixed tag, so nodes run the image that was built (`latest` would make Kubernetes pull on every start).
 */
export function defaultImage(): string {
  const { version } = createRequire(import.meta.url)('../../../../package.json') as { version: string };
  return `flotilla:${version}`;
}

function yaml(): typeof import('yaml') {
  return createRequire(import.meta.url)('yaml') as typeof import('yaml');
}
