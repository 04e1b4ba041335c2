/**
 * A tiny IngressTarget over plain objects, for unit tests of the proxies only (integration tests run the
 * real runtime). Methods run in this thread; generators see the CallOptions signal like real replicas do.
 */
import { BackPressureError, NotFoundError } from '../../../packages/core/src/errors.js';
import type { CallOptions, RouteInfo } from '../../../packages/core/src/contract/routes.js';
import type { IngressTarget } from '../../../packages/core/src/ingress/ingress-target.js';
import type { ServeStatus } from '../../../packages/core/src/contract/status.js';

type Impl = Record<string, (...args: any[]) => unknown>;

export interface FakeApp {
  name: string;
  routePrefix: string;
  impl: Impl;
  rawHttp?: boolean;
  handlesMalformedJson?: boolean;
}

export class InMemoryTarget implements IngressTarget {
  draining = false;
  /** Names of streams whose generator was closed (return() or abort reached it). */
  readonly closedStreams: string[] = [];
  lastOptions: CallOptions | undefined;
  maxOngoing = Infinity;
  private ongoing = 0;

  constructor(private readonly apps: FakeApp[]) {}

  routes(): RouteInfo[] {
    return this.apps.map((a) => ({
      app: a.name,
      routePrefix: a.routePrefix,
      ingress: `${a.name}Ingress`,
      deployments: [`${a.name}Ingress`],
      rawHttp: a.rawHttp ?? false,
      ...(a.handlesMalformedJson ? { handlesMalformedJson: true } : {}),
      methods: Object.fromEntries(Object.entries(a.impl).map(([k, fn]) => [k, isGenerator(fn) ? 'stream' : 'unary'])),
    }));
  }

  getHandle(app: string): any {
    const found = this.apps.find((a) => a.name === app);
    if (!found) throw new NotFoundError(`no app ${app}`);
    return {
      remote: async (method: string, args: unknown[], opts?: CallOptions) => {
        this.lastOptions = opts;
        if (this.ongoing >= this.maxOngoing) throw new BackPressureError('queue full', { retryAfterS: 2 });
        this.ongoing++;
        try {
          return await found.impl[method]!.call({ signal: opts?.signal }, ...args);
        } finally {
          this.ongoing--;
        }
      },
      remoteStream: (method: string, args: unknown[], opts?: CallOptions) => {
        this.lastOptions = opts;
        const gen = found.impl[method]!.call({ signal: opts?.signal }, ...args) as AsyncGenerator<unknown>;
        const closed = this.closedStreams;
        return (async function* () {
          try {
            yield* gen;
          } finally {
            closed.push(method);
          }
        })();
      },
    };
  }

  status(): ServeStatus {
    return {
      startedAtMs: 0,
      applications: this.apps.map((a) => ({
        name: a.name,
        routePrefix: a.routePrefix,
        status: 'RUNNING',
        deployments: [
          {
            name: `${a.name}Ingress`,
            status: 'HEALTHY',
            targetReplicas: 1,
            queued: 0,
            ongoing: this.ongoing,
            replicas: [{ id: 'r1', state: 'RUNNING', placement: 'local', node: 'head', ongoing: 0, startedAtMs: 0 }],
          },
        ],
      })),
    };
  }
}

function isGenerator(fn: unknown): boolean {
  return Object.prototype.toString.call(fn) === '[object AsyncGeneratorFunction]';
}
