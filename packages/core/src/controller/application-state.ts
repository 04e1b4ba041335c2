/**
 * One application: its deployments (from the flattened bind graph, with options resolved through
 * decorator → bind-time → config file) and the status derived from theirs. apply() takes a new graph
 * or config: changed deployments update in place (deployment-state.ts), new ones start, removed ones stop.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { configOverrides, resolveDeploymentOptions, type ServeConfig } from '../config.js';
import type { ResolvedDeploymentOptions } from '../contract/deployment-options.js';
import { DeploymentConfigError } from '../errors.js';
import { DeploymentState, type DeploymentStateDeps } from './deployment-state.js';
import { modelIdFunctionOf, routingKeyOf } from '../router/routing-key.js';
import { hasMultiplexedLoader } from '../multiplexed.js';
import type { DeploymentSpec } from '../contract/deployment-options.js';
import type { AppGraph } from '../application.js';
import type { ApplicationStatusInfo } from '../contract/status.js';
import type { RouteInfo } from '../contract/routes.js';

export type ApplicationStatus = ApplicationStatusInfo['status'];

export class ApplicationState {
  status: ApplicationStatus = 'DEPLOYING';
  readonly deployments = new Map<string, DeploymentState>();
  /** How it was deployed onto a running head (serve deploy's request), kept in the checkpoint. */
  source: unknown;

  private readonly stopping: Promise<void>[] = [];

  constructor(
    readonly name: string,
    public routePrefix: string,
    graph: AppGraph,
    config: ServeConfig | undefined,
    private readonly deps: DeploymentStateDeps,
    private readonly onError: (err: unknown) => void,
  ) {
    this.ingress = graph.ingress;
    for (const spec of buildSpecs(name, graph, config))
      this.deployments.set(spec.name, new DeploymentState(spec, deps));
  }

  /** Validates the new graph and config first (throws DeploymentConfigError, changing nothing). */
  apply(routePrefix: string, graph: AppGraph, config: ServeConfig | undefined): void {
    const specs = buildSpecs(this.name, graph, config);
    this.routePrefix = routePrefix;
    this.ingress = graph.ingress;
    const names = new Set(specs.map((s) => s.name));
    for (const [name, d] of this.deployments) {
      if (names.has(name)) continue;
      this.deployments.delete(name);
      this.stopping.push(d.stop().catch((err) => this.onError(err)));
    }
    for (const spec of specs) {
      const known = this.deployments.get(spec.name);
      if (known) known.apply(spec);
      else this.deployments.set(spec.name, new DeploymentState(spec, this.deps));
    }
    if (this.status !== 'DELETING') this.status = 'DEPLOYING';
  }

  ingress: string;

  /** Reconciles every deployment; one failing update never stops the others. */
  update(nowMs: number): void {
    for (const d of this.deployments.values()) {
      try {
        d.update(nowMs);
      } catch (err) {
        this.onError(err);
      }
    }
    if (this.status === 'DELETING') return;
    const all = [...this.deployments.values()];
    if (all.some((d) => d.status === 'FAILED')) this.status = 'DEPLOY_FAILED';
    else if (all.every((d) => d.status === 'HEALTHY')) this.status = 'RUNNING';
    else if (this.status !== 'RUNNING') this.status = 'DEPLOYING';
  }

  /** Why the app failed to deploy (the first failed deployment's message), if it did. */
  failure(): string | undefined {
    const failed = [...this.deployments.values()].find((d) => d.status === 'FAILED');
    return failed ? `deployment ${failed.name} failed: ${failed.message}` : undefined;
  }

  route(): RouteInfo {
    const info = this.deployments.get(this.ingress)?.info;
    const internal: Record<string, string[]> = {};
    for (const [name, d] of this.deployments) if (d.info?.internalMethods) internal[name] = d.info.internalMethods;
    const hidden = new Set(internal[this.ingress]);
    const methods = Object.fromEntries(Object.entries(info?.methods ?? {}).filter(([m]) => !hidden.has(m)));
    return {
      app: this.name,
      routePrefix: this.routePrefix,
      ingress: this.ingress,
      deployments: [...this.deployments.keys()],
      methods,
      rawHttp: info?.rawHttp ?? false,
      ...(info?.handlesMalformedJson ? { handlesMalformedJson: true } : {}),
      ...(Object.keys(internal).length > 0 ? { internalMethods: internal } : {}),
    };
  }

  describe(): ApplicationStatusInfo {
    return {
      name: this.name,
      routePrefix: this.routePrefix,
      status: this.status,
      deployments: [...this.deployments.values()].map((d) => d.describe()),
    };
  }

  /** Callers first (graph order), so that a draining caller can still reach the deployments it calls. */
  async stop(): Promise<void> {
    this.status = 'DELETING';
    for (const d of this.deployments.values()) await d.stop();
    await Promise.all(this.stopping);
  }
}

/** The deployments of a graph with their options resolved and their versions computed. */
export function buildSpecs(app: string, graph: AppGraph, config: ServeConfig | undefined): DeploymentSpec[] {
  return graph.nodes.map((node) => {
    const where = `application '${app}', deployment ${node.name} (${node.definition.modulePath || 'unknown module'})`;
    if (!node.definition.modulePath) {
      throw new DeploymentConfigError(
        `${where}: cannot tell which module defines the class; pass @deployment({ module: import.meta.url })`,
      );
    }
    const options = resolveDeploymentOptions(
      node.name,
      [node.definition.options, node.overrides, configOverrides(config, app, node.name)],
      where,
    );
    if (node.definition.options.pool && hasMultiplexedLoader(node.definition.cls)) {
      throw new DeploymentConfigError(
        `${where}: a @multiplexed loader cannot run in a pool deployment (its calls run on the pool's threads, ` +
          'which neither pin models for their requests nor report them); drop `pool` or the loader',
      );
    }
    const routingKey = routingKeyOf(node.definition.cls, options.routing, where);
    const multiplexedModelId = modelIdFunctionOf(node.definition.cls, where);
    const spec = {
      app,
      name: node.name,
      className: node.definition.name,
      modulePath: node.definition.modulePath,
      args: node.args,
      options,
    };
    return {
      ...spec,
      version: deploymentVersion(spec),
      ...(routingKey ? { routingKey } : {}),
      ...(multiplexedModelId ? { multiplexedModelId } : {}),
    };
  });
}

/**
 * What makes replicas obsolete: the class, its module's source (only the module file itself; a change
 * in a module it imports is not seen), the constructor arguments, and the options a running replica
 * cannot take on (maxOngoingRequests, resources, placement). Scaling options and userConfig are not in it.
 */
export function deploymentVersion(spec: Omit<DeploymentSpec, 'version'>): string {
  const o: ResolvedDeploymentOptions = spec.options;
  let source = '';
  try {
    source = readFileSync(spec.modulePath, 'utf8');
  } catch {
    // The replica reports the unreadable module when it starts.
  }
  const hash = createHash('sha256');
  hash.update(JSON.stringify([spec.className, spec.modulePath, o.maxOngoingRequests, o.resources, o.placement]));
  hash.update(source);
  hash.update(stableArgs(spec.args));
  return hash.digest('hex').slice(0, 12);
}

function stableArgs(args: unknown[]): string {
  try {
    return JSON.stringify(args) ?? '';
  } catch {
    return inspect(args, { depth: 8 });
  }
}
