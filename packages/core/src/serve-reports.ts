/**
 * What a ServeInstance reads off its controller's applications for its callers: readiness (every
 * application RUNNING, or why not), per-deployment stats, and the metrics replicas expose.
 *
 * Separate from serve-instance.ts, which owns the instance's lifecycle and routing: these only read
 * the applications' state (and ask replicas for metrics), changing nothing.
 */
import { DeploymentConfigError, UnavailableError } from './errors.js';
import { settle } from './controller/replica-set.js';
import type { ApplicationState } from './controller/application-state.js';
import type { DeploymentStats } from './runtime-events.js';
import type { ReplicaMetrics } from './contract/status.js';

type Apps = ReadonlyMap<string, ApplicationState>;

/** Resolves when every application is RUNNING; rejects when one fails to deploy or on timeout. */
export async function waitReady(appsByName: Apps, timeoutS: number): Promise<void> {
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    const apps = [...appsByName.values()];
    const failed = apps.find((a) => a.status === 'DEPLOY_FAILED');
    if (failed) {
      throw new DeploymentConfigError(`application '${failed.name}': ${failed.failure()}`, { app: failed.name });
    }
    if (apps.every((a) => a.status === 'RUNNING')) return;
    if (Date.now() > deadline) {
      const waiting = apps.flatMap((a) =>
        a
          .describe()
          .deployments.filter((d) => d.status !== 'HEALTHY')
          .map((d) => `${a.name}/${d.name}: ${d.status}${d.message ? ` (${d.message})` : ''}`),
      );
      throw new UnavailableError(`not ready after ${timeoutS} s: ${waiting.join('; ')}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One row per deployment: target and actual replicas, queue lengths, and calls in flight in its routers. */
export function deploymentStats(apps: Apps, inFlight: (app: string, deployment: string) => number): DeploymentStats[] {
  const out: DeploymentStats[] = [];
  for (const app of apps.values()) {
    for (const d of app.deployments.values()) {
      const info = d.describe();
      out.push({
        app: app.name,
        deployment: d.name,
        targetReplicas: d.targetReplicas,
        replicas: d.counts(),
        ongoing: info.ongoing,
        queued: info.queued,
        inFlight: inFlight(app.name, d.name),
      });
    }
  }
  return out;
}

/** Asks every RUNNING replica for the metrics it exposes (a replica that does not answer within 2 s is left out). */
export async function collectReplicaMetrics(apps: Apps): Promise<ReplicaMetrics[]> {
  const asks: Promise<ReplicaMetrics | null>[] = [];
  for (const app of apps.values()) {
    for (const d of app.deployments.values()) {
      for (const { id, actor } of d.runningActors()) {
        asks.push(
          settle(actor, actor.control.collectMetrics(), 2000).then(
            (metrics) => (metrics.length > 0 ? { app: app.name, deployment: d.name, replica: id, metrics } : null),
            () => null,
          ),
        );
      }
    }
  }
  return (await Promise.all(asks)).filter((m): m is ReplicaMetrics => m !== null);
}
