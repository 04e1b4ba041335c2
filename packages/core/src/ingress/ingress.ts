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

export interface IngressOptions {
  /** HTTP proxy options, or false for none. Default: {} (127.0.0.1:8000). */
  http?: Omit<HttpProxyOptions, 'metrics'> | false;
  /** gRPC proxy options, or false for none. Default: {} (127.0.0.1:9000). */
  grpc?: Omit<GrpcProxyOptions, 'metrics'> | false;
  /** Deployment-defined proto services for the gRPC proxy (e.g. from grpcServicesOf). Default: none. */
  grpcServices?: GrpcServiceBinding[];
  /** The runtime's events, for per-deployment call and batch metrics. Default: none. */
  events?: RuntimeEvents;
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
    const http = options.http === false ? undefined : await HttpProxy.start(target, { ...options.http, metrics });
    let grpc: GrpcProxy | undefined;
    try {
      grpc =
        options.grpc === false
          ? undefined
          : await GrpcProxy.start(target, {
              ...options.grpc,
              metrics,
              services: [...(options.grpc?.services ?? []), ...(options.grpcServices ?? [])],
            });
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
