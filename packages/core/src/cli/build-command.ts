/**
 * `serve build FILE:EXPORT [key=value ...] --out DIR [--image IMG]`: loads the application (to read each
 * deployment's resources and replica bounds) and writes Kubernetes manifests (cluster/k8s-manifests.ts)
 * as YAML files plus a kustomization.yaml, so `kubectl apply -k DIR` deploys it.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { buildGraph } from '../application.js';
import { loadServeConfig, type ServeConfig } from '../config.js';
import { buildSpecs } from '../controller/application-state.js';
import { kubernetesManifests, type DeploymentResources } from '../cluster/k8s-manifests.js';
import { loadApplication, parseAppSpec, parseKeyValues } from './app-loader.js';
import { CliError, causeOf } from './cli-error.js';

export interface BuildOptions {
  out: string;
  /** Default: 'kubernetes' (the only one). */
  target?: string;
  /** Default: 'flotilla:latest'. */
  image?: string;
  /** Default: 'flotilla'. */
  name?: string;
  namespace?: string;
  config?: string;
  /** Repository root inside the image. Default: '/app'. */
  workdir?: string;
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
  const manifests = kubernetesManifests({
    name: opts.name ?? 'flotilla',
    namespace: opts.namespace,
    image: opts.image ?? 'flotilla:latest',
    target: relTarget,
    args: words,
    app: appName,
    deployments,
    workingDir: opts.workdir ?? '/app',
    serveConfig: opts.config ? readFileSync(opts.config, 'utf8') : defaultConfig(appName, relTarget, args),
  });
  const { stringify } = yaml();
  mkdirSync(opts.out, { recursive: true });
  for (const m of manifests) writeFileSync(path.join(opts.out, m.file), stringify(m.object));
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
    `Apply with \`kubectl apply -k ${opts.out}\`; the HPA needs prometheus-adapter (docs/architecture.md).\n`
  );
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

function yaml(): typeof import('yaml') {
  return createRequire(import.meta.url)('yaml') as typeof import('yaml');
}
