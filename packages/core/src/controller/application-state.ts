/**
 * One application: its deployments (from the flattened bind graph, with options resolved through
 * decorator → bind-time → config file) and the status derived from theirs.
 */
import { configOverrides, resolveDeploymentOptions, type ServeConfig } from '../config.js';
import { DeploymentConfigError } from '../errors.js';
import { DeploymentState, type DeploymentStateDeps } from './deployment-state.js';
import type { AppGraph } from '../application.js';
import type { ApplicationStatusInfo, RouteInfo } from '../ingress/ingress-target.js';

export type ApplicationStatus = ApplicationStatusInfo['status'];

export class ApplicationState {
  status: ApplicationStatus = 'DEPLOYING';
  readonly deployments = new Map<string, DeploymentState>();

  constructor(
    readonly name: string,
    readonly routePrefix: string,
    graph: AppGraph,
    config: ServeConfig | undefined,
    deps: DeploymentStateDeps,
    private readonly onError: (err: unknown) => void,
  ) {
    this.ingress = graph.ingress;
    for (const node of graph.nodes) {
      const where = `application '${name}', deployment ${node.name} (${node.definition.modulePath || 'unknown module'})`;
      if (!node.definition.modulePath) {
        throw new DeploymentConfigError(`${where}: cannot tell which module defines the class; pass @deployment({ module: import.meta.url })`);
      }
      const options = resolveDeploymentOptions(node.name,
        [node.definition.options, node.overrides, configOverrides(config, name, node.name)], where);
      this.deployments.set(node.name, new DeploymentState({ app: name, name: node.name, className: node.definition.name,
        modulePath: node.definition.modulePath, args: node.args, options }, deps));
    }
  }

  readonly ingress: string;

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
    return { app: this.name, routePrefix: this.routePrefix, ingress: this.ingress, deployments: [...this.deployments.keys()],
      methods: info?.methods ?? {}, rawHttp: info?.rawHttp ?? false };
  }

  describe(): ApplicationStatusInfo {
    return { name: this.name, routePrefix: this.routePrefix, status: this.status,
      deployments: [...this.deployments.values()].map((d) => d.describe()) };
  }

  /** Callers first (graph order), so that a draining caller can still reach the deployments it calls. */
  async stop(): Promise<void> {
    this.status = 'DELETING';
    for (const d of this.deployments.values()) await d.stop();
  }
}
