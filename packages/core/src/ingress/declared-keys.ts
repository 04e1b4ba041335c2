/**
 * Keys a deployment class declares for the proxies in front of it, so that an application that takes its
 * own keys as arguments (LLMServer's apiKeys, adminKeys, metricsKeys) guards the proxies' routes with them
 * too. `serve run` reads them from the application it loads, as it reads `static grpcServices`:
 *
 * ```ts
 * class MyServer { static ingressKeys(options: { apiKeys?: string[] }): IngressKeys { return { apiKeys: options.apiKeys }; } }
 * ```
 *
 * The static is called with the deployment's bind arguments, in the process that loaded the application.
 */
import { buildGraph, type Application } from '../application.js';
import { DeploymentConfigError } from '../errors.js';
import type { IngressKeys } from './ingress-keys.js';

/** The keys every deployment of `app` declares (`static ingressKeys(...args)`), merged. */
export function declaredKeysOf(appName: string, app: Application): IngressKeys {
  const out: Required<{ [K in keyof IngressKeys]: string[] }> = { apiKeys: [], adminKeys: [], metricsKeys: [] };
  for (const node of buildGraph(appName, app).nodes) {
    const cls = node.definition.cls as { ingressKeys?: unknown };
    if (cls.ingressKeys === undefined) continue;
    if (typeof cls.ingressKeys !== 'function')
      throw new DeploymentConfigError(
        `${node.name}.ingressKeys must be a static method (...bindArgs) => IngressKeys.`,
        {
          deployment: node.name,
        },
      );
    const keys = (cls.ingressKeys as (...args: unknown[]) => IngressKeys | undefined).apply(cls, node.args) ?? {};
    for (const kind of ['apiKeys', 'adminKeys', 'metricsKeys'] as const) out[kind].push(...(keys[kind] ?? []));
  }
  return out;
}

/** Key lists joined kind by kind (undefined stays undefined). */
export function mergeKeys(...sets: IngressKeys[]): IngressKeys {
  const out: IngressKeys = {};
  for (const kind of ['apiKeys', 'adminKeys', 'metricsKeys'] as const) {
    const all = sets.flatMap((s) => s[kind] ?? []);
    if (all.length > 0) out[kind] = [...new Set(all)];
  }
  return out;
}
