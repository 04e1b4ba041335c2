/**
 * An IngressTarget whose one deployment is a no-op in the proxy's own thread: run through the real
 * HttpProxy it isolates the proxy's HTTP layer from the cost of the hop to a replica.
 */
import type { IngressTarget } from '../../packages/core/src/ingress/ingress-target.js';
import type { RouteInfo } from '../../packages/core/src/contract/routes.js';
import type { ServeStatus } from '../../packages/core/src/contract/status.js';

const route: RouteInfo = {
  app: 'local',
  routePrefix: '/',
  ingress: 'Noop',
  deployments: ['Noop'],
  methods: { noop: 'unary' },
  rawHttp: false,
};

export const localTarget: IngressTarget = {
  draining: false,
  routes: () => [route],
  getHandle: () => ({ remote: async (_method: string, args: unknown[]) => args[0] }) as never,
  status: (): ServeStatus => ({ startedAtMs: 0, applications: [] }),
};
