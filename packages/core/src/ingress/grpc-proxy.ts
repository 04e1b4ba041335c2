/**
 * The gRPC proxy (@grpc/grpc-js + proto-loader): protos/serve.proto's Serve service reaches any method of
 * any deployment, unary (Call) or server-streaming (Stream), with JSON payloads. Deployments can also be
 * served under their own proto services (see grpc-services.ts and `addService`).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { BadRequestError, NotFoundError } from '../errors.js';
import { FlotillaMetrics } from '../observability/metrics.js';
import { parseJsonPayload, toCallArgs } from './call-payload.js';
import { runStream, runUnary, type GrpcContext, type MutableLabels } from './grpc-call.js';
import { bindService, type GrpcServiceBinding } from './grpc-services.js';
import type { IngressTarget } from './ingress-target.js';
import type { RouteInfo } from '../contract/routes.js';

export const SERVE_PROTO_PATH = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../../protos/serve.proto',
);
const SERVICE_PATH = '/flotilla.serve.v1.Serve';

export interface GrpcProxyOptions {
  /** Interface to listen on. Default: '127.0.0.1'. */
  host?: string;
  /** Port to listen on; 0 picks a free one. Default: 9000. */
  port?: number;
  /** Largest accepted request message. Default: 4 MiB (4194304 bytes). */
  maxReceiveMessageBytes?: number;
  /** Where request metrics go. Default: a new FlotillaMetrics reading target.status(). */
  metrics?: FlotillaMetrics;
  /** Deployment-defined proto services to serve beside Serve. Default: none. */
  services?: GrpcServiceBinding[];
}

export const GRPC_DEFAULTS = { host: '127.0.0.1', port: 9000, maxReceiveMessageBytes: 4 * 1024 * 1024 } as const;

interface CallRequest {
  application: string;
  deployment: string;
  method: string;
  payload: Buffer;
  request_id: string;
}

export class GrpcProxy implements AsyncDisposable {
  readonly metrics: FlotillaMetrics;
  private readonly server: grpc.Server;
  private readonly ctx: GrpcContext;
  private draining = false;
  private boundAddress = '';

  private constructor(
    private readonly target: IngressTarget,
    options: GrpcProxyOptions,
  ) {
    this.metrics = options.metrics ?? new FlotillaMetrics({ status: () => target.status() });
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': options.maxReceiveMessageBytes ?? GRPC_DEFAULTS.maxReceiveMessageBytes,
    });
    this.ctx = { target, metrics: this.metrics, isDraining: () => this.draining || target.draining };
  }

  static async start(target: IngressTarget, options: GrpcProxyOptions = {}): Promise<GrpcProxy> {
    const proxy = new GrpcProxy(target, options);
    proxy.addServeService();
    for (const binding of options.services ?? []) proxy.addService(binding);
    const host = options.host ?? GRPC_DEFAULTS.host;
    const port = await new Promise<number>((resolve, reject) => {
      proxy.server.bindAsync(
        `${host.includes(':') ? `[${host}]` : host}:${options.port ?? GRPC_DEFAULTS.port}`,
        grpc.ServerCredentials.createInsecure(),
        (err, bound) => (err ? reject(err) : resolve(bound)),
      );
    });
    proxy.boundAddress = `${host}:${port}`;
    return proxy;
  }

  /** e.g. '127.0.0.1:9000' (what a grpc-js client takes). */
  get address(): string {
    return this.boundAddress;
  }

  get port(): number {
    return Number(this.boundAddress.slice(this.boundAddress.lastIndexOf(':') + 1));
  }

  /** Serves a deployment-defined proto service (may be called while running). */
  addService(binding: GrpcServiceBinding): void {
    const { definition, implementation } = bindService(binding, this.ctx);
    this.server.addService(definition, implementation);
  }

  /** New calls get UNAVAILABLE from now on; calls in flight continue. */
  drain(): void {
    this.draining = true;
  }

  /** Waits for in-flight calls up to `graceMs`, then cancels the rest. Default grace: 5000 ms. */
  async close(graceMs = 5000): Promise<void> {
    this.draining = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.server.tryShutdown(() => resolve())),
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.server.forceShutdown();
          resolve();
        }, graceMs);
      }),
    ]);
    clearTimeout(timer);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private addServeService(): void {
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(SERVE_PROTO_PATH, { keepCase: true, defaults: true }));
    const service = (pkg as any).flotilla.serve.v1.Serve.service as grpc.ServiceDefinition;
    this.server.addService(service, {
      Call: (call: grpc.ServerUnaryCall<CallRequest, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        this.onCall(call, cb),
      Stream: (call: grpc.ServerWritableStream<CallRequest, unknown>) => this.onStream(call),
      ListApplications: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        cb(null, {
          applications: this.target.routes().map((r) => ({
            name: r.app,
            route_prefix: r.routePrefix,
            ingress: r.ingress,
            deployments: r.deployments,
            methods: r.methods,
          })),
        }),
      Healthz: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        cb(null, { status: this.ctx.isDraining() ? 'NOT_SERVING' : 'SERVING' }),
    });
  }

  private onCall(call: grpc.ServerUnaryCall<CallRequest, unknown>, callback: grpc.sendUnaryData<unknown>): void {
    const req = call.request;
    const labels: MutableLabels = { app: '', deployment: '', route: `${SERVICE_PATH}/Call`, method: req.method };
    void runUnary(
      this.ctx,
      call,
      callback,
      labels,
      async (scope) => {
        const { handle, args, kind } = this.resolve(req, labels);
        if (kind === 'stream')
          throw new BadRequestError(`Method '${req.method}' is a stream; call it with Serve/Stream.`);
        const result = await handle.remote(req.method, args, scope.callOptions);
        return { payload: encodeJson(result), request_id: scope.requestId };
      },
      req.request_id,
    );
  }

  private onStream(call: grpc.ServerWritableStream<CallRequest, unknown>): void {
    const req = call.request;
    const labels: MutableLabels = { app: '', deployment: '', route: `${SERVICE_PATH}/Stream`, method: req.method };
    void runStream(
      this.ctx,
      call,
      labels,
      (scope) => {
        const { handle, args, kind } = this.resolve(req, labels);
        const opts = scope.callOptions;
        // A unary method called as a stream yields its one result, so clients can always use Stream.
        if (kind === 'unary')
          return (async function* () {
            yield await handle.remote(req.method, args, opts);
          })();
        return handle.remoteStream(req.method, args, opts);
      },
      (item, scope) => ({ payload: encodeJson(item), request_id: scope.requestId }),
      req.request_id,
    );
  }

  /** Finds the application, deployment and method named in a request; throws NotFound/BadRequest. */
  private resolve(req: CallRequest, labels: MutableLabels) {
    const route = findApp(this.target.routes(), req.application);
    const deployment = req.deployment || route.ingress;
    if (!route.deployments.includes(deployment)) {
      throw new NotFoundError(
        `Application '${route.app}' has no deployment '${deployment}'; it has: ${route.deployments.join(', ')}.`,
      );
    }
    labels.app = route.app;
    labels.deployment = deployment;
    // Methods are known for the ingress only; other deployments report unknown methods themselves.
    const kind = deployment === route.ingress ? route.methods[req.method] : undefined;
    if (deployment === route.ingress && !kind) {
      throw new NotFoundError(
        `Deployment '${deployment}' of application '${route.app}' has no method '${req.method}'; available: ${Object.keys(route.methods).join(', ') || '(none)'}.`,
      );
    }
    const text = req.payload?.length ? Buffer.from(req.payload).toString('utf8') : undefined;
    const args = toCallArgs(parseJsonPayload(text));
    return { handle: this.target.getHandle(route.app, req.deployment || undefined), args, kind };
  }
}

function findApp(routes: RouteInfo[], name: string): RouteInfo {
  if (!name && routes.length === 1) return routes[0]!;
  const route = routes.find((r) => r.app === name);
  if (route) return route;
  const names = routes.map((r) => r.app).join(', ') || '(none running)';
  throw new NotFoundError(
    name ? `No application '${name}'; running: ${names}.` : `Name the application in the request; running: ${names}.`,
  );
}

function encodeJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value ?? null), 'utf8');
}
