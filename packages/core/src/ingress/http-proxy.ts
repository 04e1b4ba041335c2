/**
 * The HTTP proxy (fastify): every application under its route prefix, plus the proxy's own routes
 * (/-/healthz, /-/routes, /-/status, /metrics, POST /-/shutdown). HTTPS when given `tls`; keys
 * (apiKeys, adminKeys, metricsKeys) guard every route but the liveness probes (http-auth.ts); Node's
 * server enforces the connection limits (http-server-options.ts).
 *
 * Generic deployments: `POST {prefix}/{method}` with a JSON body (an array spreads as the arguments,
 * anything else is the one argument; `{prefix}` alone calls `__call__`). Streaming methods answer as
 * server-sent events when the client accepts text/event-stream, else as chunked NDJSON. Deployments that
 * define handleHttp(req) receive the whole request instead (see http-raw.ts).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { PayloadTooLargeError, BadRequestError } from '../errors.js';
import { FlotillaMetrics } from '../observability/metrics.js';
import { acceptRequestId } from './call-payload.js';
import { errorBody, mapError } from './error-mapping.js';
import { registerAdminRoutes } from '../observability/http-admin.js';
import { registerDashboard } from '../observability/dashboard.js';
import { dispatch } from './http-dispatch.js';
import type { IngressTarget } from './ingress-target.js';
import type { ServeStatus } from '../contract/status.js';
import { authHook } from './http-auth.js';
import { CONNECTION_DEFAULTS, resolveServerOptions, type HttpConnectionLimits } from './http-server-options.js';
import { KeyRing, type IngressKeys } from './ingress-keys.js';
import { loadTls, type TlsOptions } from './tls.js';

export interface HttpProxyOptions extends IngressKeys, HttpConnectionLimits {
  /** Interface to listen on. Default: '127.0.0.1'. */
  host?: string;
  /** Port to listen on; 0 picks a free one. Default: 8000. */
  port?: number;
  /**
   * Time a request may take before the proxy answers 408 and cancels it downstream; for streams, the
   * time to the first chunk (a stream that is flowing ends when its client or its generator says so).
   * 0 disables. Default: 120000 ms.
   */
  requestTimeoutMs?: number;
  /** Largest accepted request body; larger ones get 413. Default: 4 MiB (4194304 bytes). */
  bodyLimitBytes?: number;
  /** Serve HTTPS with this certificate and key. Default: none (plain HTTP). */
  tls?: TlsOptions;
  /** Where request metrics go and what /metrics serves. Default: a new FlotillaMetrics reading target.status(). */
  metrics?: FlotillaMetrics;
  /**
   * Called after POST /-/shutdown has been answered (from loopback without keys; with keys, with an admin
   * key). Default: none (the route answers 501).
   */
  onShutdown?: () => void;
  /** Adds routes or plugins before listening (e.g. a dashboard under /-/dashboard). Default: none. */
  configure?: (app: FastifyInstance) => void | Promise<void>;
  /** Log every request through fastify's pino logger. Default: false. */
  logger?: boolean;
}

export const HTTP_DEFAULTS = {
  host: '127.0.0.1',
  port: 8000,
  requestTimeoutMs: 120_000,
  bodyLimitBytes: 4 * 1024 * 1024,
  ...CONNECTION_DEFAULTS,
} as const;

export class HttpProxy implements AsyncDisposable {
  readonly metrics: FlotillaMetrics;
  private readonly app: FastifyInstance;
  private draining = false;
  private ongoing = 0;
  private idleWaiters: Array<() => void> = [];
  private boundUrl = '';
  private extraStatus: Partial<Pick<ServeStatus, 'grpc'>> = {};
  private readonly keys: KeyRing;
  private readonly scheme: 'http' | 'https';

  private constructor(
    private readonly target: IngressTarget,
    private readonly options: HttpProxyOptions,
  ) {
    this.metrics = options.metrics ?? new FlotillaMetrics({ status: () => target.status() });
    this.keys = new KeyRing(options);
    const limits = resolveServerOptions(options);
    const tls = options.tls ? loadTls(options.tls) : undefined;
    this.scheme = tls ? 'https' : 'http';
    const serverOptions: http.ServerOptions = {
      headersTimeout: limits.headersTimeout,
      requestTimeout: limits.requestTimeout,
      keepAliveTimeout: limits.keepAliveTimeout,
      connectionsCheckingInterval: limits.connectionsCheckingInterval,
    };
    this.app = Fastify({
      logger: options.logger ?? false,
      bodyLimit: options.bodyLimitBytes ?? HTTP_DEFAULTS.bodyLimitBytes,
      genReqId: (req) => acceptRequestId(req.headers['x-request-id'], randomUUID),
      return503OnClosing: true,
      // Our own server, so that Node's request timeouts (which fastify does not pass) and TLS are set on it.
      serverFactory: (handler) => {
        const server = tls
          ? https.createServer({ ...serverOptions, cert: tls.cert, key: tls.key }, handler)
          : http.createServer(serverOptions, handler);
        server.maxConnections = limits.maxConnections;
        if (limits.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
        return server;
      },
    });
  }

  /** Starts listening; resolves once the port is bound. */
  static async start(target: IngressTarget, options: HttpProxyOptions = {}): Promise<HttpProxy> {
    const proxy = new HttpProxy(target, options);
    await proxy.setup();
    const host = options.host ?? HTTP_DEFAULTS.host;
    await proxy.app.listen({ host, port: options.port ?? HTTP_DEFAULTS.port });
    const { port } = proxy.app.server.address() as AddressInfo;
    proxy.boundUrl = `${proxy.scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
    return proxy;
  }

  /** e.g. 'http://127.0.0.1:8000', or 'https://…' with tls. */
  get url(): string {
    return this.boundUrl;
  }

  get port(): number {
    return Number(new URL(this.boundUrl).port);
  }

  /** Requests to applications currently in flight through this proxy. */
  get ongoingRequests(): number {
    return this.ongoing;
  }

  /** The gRPC address to report in /-/status when the instance does not know it. */
  setGrpcAddress(address: string | undefined): void {
    this.extraStatus.grpc = address;
  }

  /**
   * Stops taking new application requests (they get 503) and waits until the in-flight ones finish or
   * `timeoutMs` passes. Resolves true when all finished.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.draining = true;
    if (this.ongoing === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const drained = await Promise.race([idle, timeout]);
    clearTimeout(timer);
    return drained;
  }

  /** Closes the listener and every connection; in-flight requests are cut (call drain() first to finish them). */
  async close(): Promise<void> {
    this.draining = true;
    this.app.server.closeAllConnections();
    await this.app.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async setup(): Promise<void> {
    const app = this.app;
    // One parser for every content type: bodies stay raw bytes so the proxy decides how to read them
    // (JSON arguments, or the raw text a handleHttp deployment gets) and owns the error messages.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    // A callback hook, not an async one: it runs on every request and an async hook costs a promise turn.
    app.addHook('onRequest', (req, reply, done) => {
      reply.header('x-request-id', req.id);
      done();
    });
    if (this.keys.enabled)
      app.addHook(
        'onRequest',
        authHook(this.keys, () => this.target.routes()),
      );
    app.setErrorHandler((err: FastifyError, _req, reply) => {
      const mapped = mapError(fromFastifyError(err));
      void reply
        .code(mapped.httpStatus)
        .type('application/json; charset=utf-8')
        .send(JSON.stringify(errorBody(mapped)));
    });
    registerAdminRoutes(app, {
      target: this.target,
      metrics: this.metrics,
      isDraining: () => this.isDraining(),
      decorateStatus: (s) => ({ ...s, http: s.http ?? this.boundUrl, grpc: s.grpc ?? this.extraStatus.grpc }),
      onShutdown: this.options.onShutdown,
      keysChecked: this.keys.enabled,
    });
    registerDashboard(app, { target: this.target, metrics: this.metrics });
    await this.options.configure?.(app);
    const ctx = {
      target: this.target,
      metrics: this.metrics,
      requestTimeoutMs: this.options.requestTimeoutMs ?? HTTP_DEFAULTS.requestTimeoutMs,
      isDraining: () => this.isDraining(),
      onRequestStart: () => {
        this.ongoing++;
      },
      onRequestEnd: () => this.requestEnded(),
      handles: new Map(),
    };
    app.all('/', (req, reply) => dispatch(ctx, req, reply));
    app.all('/*', (req, reply) => dispatch(ctx, req, reply));
  }

  private isDraining(): boolean {
    return this.draining || this.target.draining;
  }

  private requestEnded(): void {
    this.ongoing--;
    if (this.ongoing === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }
}

/** Turns fastify's own errors (raised before our handler runs) into Flotilla's typed errors. */
function fromFastifyError(err: FastifyError): unknown {
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || err.statusCode === 413) {
    return new PayloadTooLargeError(
      'Request body is larger than the proxy accepts; send less, or raise bodyLimitBytes (serve run --body-limit).',
    );
  }
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500)
    return new BadRequestError(err.message);
  return err;
}
