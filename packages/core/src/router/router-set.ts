/**
 * All routers of the controller's process, one per (caller, deployment): the ingress (proxies and
 * ServeInstance.getHandle) is one caller, and each deployment whose replicas make handle calls is
 * another (their calls are relayed here, see handle.ts). maxQueuedRequests therefore applies per caller.
 */
import { NotFoundError } from '../errors.js';
import { Router, unavailable, type ReplicaModelsReport, type RoutedReplica, type RouterSettings } from './router.js';
import type { RuntimeEvents } from '../runtime-events.js';

interface Published {
  running: RoutedReplica[];
  unavailable?: string;
}

export class RouterSet {
  private readonly routers = new Map<string, Router>();
  private readonly latest = new Map<string, Published>();
  private readonly latestModels = new Map<string, ReadonlyMap<string, ReplicaModelsReport>>();

  constructor(
    private readonly events: RuntimeEvents,
    /** A deployment's router settings (from its current spec), or undefined when it does not exist. */
    private readonly settings: (app: string, deployment: string) => RouterSettings | undefined,
  ) {}

  /** caller: 'ingress', or the calling deployment's name. */
  get(caller: string, app: string, deployment: string): Router {
    const key = `${caller}\u0000${app}\u0000${deployment}`;
    let router = this.routers.get(key);
    if (router) return router;
    const settings = this.settings(app, deployment);
    if (settings === undefined) throw new NotFoundError(`no deployment '${deployment}' in application '${app}'`);
    router = new Router({
      app,
      deployment,
      caller: caller === 'ingress' ? 'ingress' : 'replica',
      ...settings,
      events: this.events,
    });
    const published = this.latest.get(`${app}\u0000${deployment}`);
    if (published) this.apply(router, app, deployment, published);
    const models = this.latestModels.get(`${app}\u0000${deployment}`);
    if (models) router.setModels(models);
    this.routers.set(key, router);
    return router;
  }

  publish(app: string, deployment: string, running: RoutedReplica[], why?: string): void {
    const published = { running, unavailable: why };
    this.latest.set(`${app}\u0000${deployment}`, published);
    for (const router of this.of(app, deployment)) this.apply(router, app, deployment, published);
  }

  /** The replicas' loaded @multiplexed models, as the controller last polled them. */
  publishModels(app: string, deployment: string, reports: ReadonlyMap<string, ReplicaModelsReport>): void {
    this.latestModels.set(`${app}\u0000${deployment}`, reports);
    for (const router of this.of(app, deployment)) router.setModels(reports);
  }

  /** Requests queued for a deployment across all callers. */
  queued(app: string, deployment: string): number {
    return this.of(app, deployment).reduce((n, r) => n + r.queued, 0);
  }

  inFlight(app: string, deployment: string): number {
    return this.of(app, deployment).reduce((n, r) => n + r.inFlight, 0);
  }

  ingressRouters(): Router[] {
    return [...this.routers.entries()].filter(([k]) => k.startsWith('ingress\u0000')).map(([, r]) => r);
  }

  closeAll(err: Error): void {
    for (const r of this.routers.values()) r.close(err);
  }

  private of(app: string, deployment: string): Router[] {
    const suffix = `\u0000${app}\u0000${deployment}`;
    return [...this.routers.entries()].filter(([k]) => k.endsWith(suffix)).map(([, r]) => r);
  }

  /** Publishes follow every change of RUNNING replicas, so a rolled-out spec's settings arrive with its replicas. */
  private apply(router: Router, app: string, deployment: string, p: Published): void {
    const settings = this.settings(app, deployment);
    if (settings) router.configure(settings);
    router.setReplicas(p.running);
    router.setUnavailable(p.unavailable ? unavailable(deployment, p.unavailable) : undefined);
  }
}
