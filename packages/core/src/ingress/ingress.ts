/**
 * Both proxies and their shared metrics as one unit with one lifecycle: what `serve run` starts in front
 * of a ServeInstance, and what programs embedding Flotilla can start the same way.
 */
import { FlotillaMetrics } from '../observability/metrics.js';
import type { RuntimeEvents } from '../runtime-events.js';
import { GrpcProxy, type GrpcProxyOptions } from './grpc-proxy.js';
import { HttpProxy, type HttpProxyOptions } from './http-proxy.js';
import type { IngressTarget } from './ingress-target.js';
import type { GrpcServiceBinding } from './grpc-services.js';
import type { IngressKeys } from './ingress-keys.js';
import type { TlsOptions } from './tls.js';

export interface IngressOptions {
  /** HTTP proxy options, or false for none. Default: {} (127.0.0.1:8000). */
  http?: Omit<HttpProxyOptions, 'metrics'> | false;
  /** gRPC proxy options, or false for none. Default: {} (127.0.0.1:9000). */
  grpc?: Omit<GrpcProxyOptions, 'metrics'> | false;
  /** Deployment-defined proto services for the gRPC proxy (e.g. from grpcServicesOf). Default: none. */
  grpcServices?: GrpcServiceBinding[];
  /** The runtime's events, for per-deployment call and batch metrics. Default: none. */
  events?: RuntimeEvents;
  /**
   * Keys for both proxies (ingress-keys.ts), added to any the http or grpc options give. Default: none
   * (nothing is checked).
   */
  keys?: IngressKeys;
  /** TLS for both proxies, unless their own options give one. Default: none (plain HTTP and gRPC). */
  tls?: TlsOptions;
}

/** `own` keys and TLS of one proxy, with the shared ones added. */
function withShared<T extends IngressKeys & { tls?: TlsOptions }>(own: T, options: IngressOptions): T {
  const k = options.keys ?? {};
  const join = (a?: readonly string[], b?: readonly string[]) => (a || b ? [...(a ?? []), ...(b ?? [])] : undefined);
  return {
    ...own,
    apiKeys: join(own.apiKeys, k.apiKeys),
    adminKeys: join(own.adminKeys, k.adminKeys),
    metricsKeys: join(own.metricsKeys, k.metricsKeys),
    tls: own.tls ?? options.tls,
  };
}

export class Ingress implements AsyncDisposable {
  private stopObserving: (() => void) | undefined;

  private constructor(
    readonly metrics: FlotillaMetrics,
    readonly http?: HttpProxy,
    readonly grpc?: GrpcProxy,
  ) {}

  static async start(target: IngressTarget, options: IngressOptions = {}): Promise<Ingress> {
    const metrics = new FlotillaMetrics({
      status: () => target.status(),
      replicaMetrics: () => target.replicaMetrics?.() ?? Promise.resolve([]),
    });
    const http =
      options.http === false
        ? undefined
        : await HttpProxy.start(target, withShared({ ...options.http, metrics }, options));
    let grpc: GrpcProxy | undefined;
    try {
      grpc =
        options.grpc === false
          ? undefined
          : await GrpcProxy.start(
              target,
              withShared(
                {
                  ...options.grpc,
                  metrics,
                  services: [...(options.grpc?.services ?? []), ...(options.grpcServices ?? [])],
                },
                options,
              ),
            );
    } catch (err) {
      await http?.close();
      throw err;
    }
    http?.setGrpcAddress(grpc?.address);
    const ingress = new Ingress(metrics, http, grpc);
    if (options.events) ingress.stopObserving = metrics.observeRuntime(options.events);
    return ingress;
  }

  /** Refuses new requests on both proxies and waits up to `timeoutMs` for HTTP requests in flight. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.grpc?.drain();
    return (await this.http?.drain(timeoutMs)) ?? true;
  }

  /** Closes both listeners; gRPC calls still running get `graceMs` to finish. Default grace: 5000 ms. */
  async close(graceMs = 5000): Promise<void> {
    this.stopObserving?.();
    await Promise.allSettled([this.http?.close(), this.grpc?.close(graceMs)]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
