/**
 * The gRPC proxy (@grpc/grpc-js + proto-loader): protos/serve.proto's Serve service reaches any method of
 * any deployment, unary (Call) or server-streaming (Stream), with JSON payloads. Deployments can also be
 * served under their own proto services (see grpc-services.ts and `addService`). TLS when given `tls`;
 * with keys (apiKeys, adminKeys, metricsKeys) every call but Healthz needs `authorization: Bearer KEY`
 * metadata: ListApplications an admin or metrics key, everything else an API or admin key.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { BadRequestError, NotFoundError } from '../errors.js';
import { FlotillaMetrics } from '../observability/metrics.js';
import { parseJsonPayload, toCallArgs } from './call-payload.js';
import {
  authorizeCall,
  peerAddress,
  runStream,
  runUnary,
  toServiceError,
  type GrpcContext,
  type MutableLabels,
} from './grpc-call.js';
import { bindService, callInfoOf, type GrpcServiceBinding } from './grpc-services.js';
import { KeyRing, type IngressKeys } from './ingress-keys.js';
import type { IngressTarget } from './ingress-target.js';
import type { HttpRequestLike, RequestAuth, RouteInfo } from '../contract/routes.js';
import { loadTls, type TlsOptions } from './tls.js';

export const SERVE_PROTO_PATH = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../../protos/serve.proto',
);
const SERVICE_PATH = '/flotilla.serve.v1.Serve';

export interface GrpcProxyOptions extends IngressKeys {
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
  /** Serve TLS (grpcs) with this certificate and key. Default: none (plaintext). */
  tls?: TlsOptions;
  /**
   * A connection with no call in flight for this long is closed (GOAWAY; clients reconnect on their next
   * call). Default: 30000 ms.
   */
  maxConnectionIdleMs?: number;
}

export const GRPC_DEFAULTS = {
  host: '127.0.0.1',
  port: 9000,
  maxReceiveMessageBytes: 4 * 1024 * 1024,
  maxConnectionIdleMs: 30_000,
} as const;

interface CallRequest {
  application: string;
  deployment: string;
  method: string;
  payload: Buffer;
  request_id: string;
}

export class GrpcProxy implements AsyncDisposable {
  /**
   * Per application, the methods bound with passCallInfo (their second argument is the call's metadata,
   * peer and key check). Serve.Call/Stream of such a method gets the proxy's own call info there, never
   * one from the caller's payload: a client must not choose its address or claim another key's identity.
   */
  private readonly callInfoMethods = new Map<string, Set<string>>();

  readonly metrics: FlotillaMetrics;
  private readonly server: grpc.Server;
  private readonly ctx: GrpcContext;
  private draining = false;
  private boundAddress = '';
  private readonly credentials: grpc.ServerCredentials;

  private constructor(
    private readonly target: IngressTarget,
    options: GrpcProxyOptions,
  ) {
    this.metrics = options.metrics ?? new FlotillaMetrics({ status: () => target.status() });
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': options.maxReceiveMessageBytes ?? GRPC_DEFAULTS.maxReceiveMessageBytes,
      'grpc.max_connection_idle_ms': options.maxConnectionIdleMs ?? GRPC_DEFAULTS.maxConnectionIdleMs,
    });
    const tls = options.tls ? loadTls(options.tls) : undefined;
    this.credentials = tls
      ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: tls.cert, private_key: tls.key }], false)
      : grpc.ServerCredentials.createInsecure();
    this.ctx = {
      target,
      metrics: this.metrics,
      isDraining: () => this.draining || target.draining,
      keys: new KeyRing(options),
    };
  }

  static async start(target: IngressTarget, options: GrpcProxyOptions = {}): Promise<GrpcProxy> {
    const proxy = new GrpcProxy(target, options);
    proxy.addServeService();
    for (const binding of options.services ?? []) proxy.addService(binding);
    const host = options.host ?? GRPC_DEFAULTS.host;
    const port = await new Promise<number>((resolve, reject) => {
      proxy.server.bindAsync(
        `${host.includes(':') ? `[${host}]` : host}:${options.port ?? GRPC_DEFAULTS.port}`,
        proxy.credentials,
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
    if (binding.passCallInfo) {
      const methods = this.callInfoMethods.get(binding.app) ?? new Set<string>();
      for (const method of Object.values(binding.methods ?? {})) methods.add(method);
      this.callInfoMethods.set(binding.app, methods);
    }
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
      ListApplications: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        try {
          authorizeCall(this.ctx.keys, call, `${SERVICE_PATH}/ListApplications`, { access: 'monitor' });
        } catch (err) {
          return cb(toServiceError(err));
        }
        cb(null, {
          applications: this.target.routes().map((r) => ({
            name: r.app,
            route_prefix: r.routePrefix,
            ingress: r.ingress,
            deployments: r.deployments,
            methods: r.methods,
          })),
        });
      },
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
      async (scope, auth) => {
        const { handle, args, kind } = this.resolve(req, labels, call, auth);
        if (kind === 'stream')
          throw new BadRequestError(`Method '${req.method}' is a stream; call it with Serve/Stream.`);
        const result = await handle.remote(req.method, args, scope.callOptions);
        return { payload: encodeJson(result), request_id: scope.requestId };
      },
      { requestId: req.request_id },
    );
  }

  private onStream(call: grpc.ServerWritableStream<CallRequest, unknown>): void {
    const req = call.request;
    const labels: MutableLabels = { app: '', deployment: '', route: `${SERVICE_PATH}/Stream`, method: req.method };
    void runStream(
      this.ctx,
      call,
      labels,
      (scope, auth) => {
        const { handle, args, kind } = this.resolve(req, labels, call, auth);
        const opts = scope.callOptions;
        // A unary method called as a stream yields its one result, so clients can always use Stream.
        if (kind === 'unary')
          return (async function* () {
            yield await handle.remote(req.method, args, opts);
          })();
        return handle.remoteStream(req.method, args, opts);
      },
      (item, scope) => ({ payload: encodeJson(item), request_id: scope.requestId }),
      { requestId: req.request_id },
    );
  }

  /** Finds the application, deployment and method named in a request; throws NotFound/BadRequest. */
  private resolve(
    req: CallRequest,
    labels: MutableLabels,
    call: { metadata: grpc.Metadata; getPeer(): string },
    auth: RequestAuth | undefined,
  ) {
    const peer = call.getPeer();
    const route = findApp(this.target.routes(), req.application);
    const deployment = req.deployment || route.ingress;
    if (!route.deployments.includes(deployment)) {
      throw new NotFoundError(
        `Application '${route.app}' has no deployment '${deployment}'; it has: ${route.deployments.join(', ')}.`,
      );
    }
    labels.app = route.app;
    labels.deployment = deployment;
    // Methods are known for the ingress only; other deployments report unknown methods themselves. A
    // deployment's internal methods (handles only, RouteInfo.internalMethods) are answered as unknown.
    const kind = deployment === route.ingress ? route.methods[req.method] : undefined;
    const ingress = deployment === route.ingress;
    if (ingress ? !kind : route.internalMethods?.[deployment]?.includes(req.method)) {
      const available = ingress ? `; available: ${Object.keys(route.methods).join(', ') || '(none)'}` : '';
      throw new NotFoundError(
        `Deployment '${deployment}' of application '${route.app}' has no method '${req.method}'${available}.`,
      );
    }
    const text = req.payload?.length ? Buffer.from(req.payload).toString('utf8') : undefined;
    const args = toCallArgs(parseJsonPayload(text));
    if (req.method === 'handleHttp') args[0] = asHttpRequest(args[0], peer, auth);
    else if (this.callInfoMethods.get(route.app)?.has(req.method)) args.splice(1, args.length, callInfoOf(call, auth));
    return { handle: this.target.getHandle(route.app, req.deployment || undefined), args, kind };
  }
}

/**
 * handleHttp called through Serve.Call/Stream: the request is the caller's JSON, but what the proxy vouches
 * for is the proxy's: the client address is the gRPC peer and `auth` is this call's key check, whatever
 * the payload says (a deployment rate-limits and authorizes by them).
 */
function asHttpRequest(value: unknown, peer: string, auth: RequestAuth | undefined): HttpRequestLike {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new BadRequestError('handleHttp takes one HttpRequestLike object: { method, path, headers, body, ... }.');
  const { clientIp: _ip, auth: _auth, authError: _authError, ...rest } = value as Partial<HttpRequestLike>;
  const req = { ...rest, clientIp: peerAddress(peer) } as HttpRequestLike;
  if (auth) req.auth = auth;
  return req;
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
