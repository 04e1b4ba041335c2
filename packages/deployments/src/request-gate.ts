/**
 * What every LLM request passes on its way in and out, whoever generates its answer: the API key, the
 * body's size and JSON, the rate limits (the replica's buckets or a shared RateLimiter), the built-in PII
 * guard, the cost header, the error in the route's own shape, the usage counters and one audit line.
 * LLMServer (over its engine) and LLMFront (over generation graphs) both serve through one RequestGate,
 * so the two behave the same for the same request.
 */
import { performance } from 'node:perf_hooks';
import type { DeploymentHandle, GrpcCallInfo, HttpRequestLike } from '@flotilla/core';
import { KeyRing, getRequestContext } from '@flotilla/core';
import { Registry } from 'prom-client';
import { AuditLog, type AuditSink } from './audit-log.js';
import { AuthenticationError, LLMServerConfigError, RateLimiterUnavailableError } from './errors.js';
import { grpcAuthHeaders, grpcClientOf, toCoreError, type GrpcGenerateRequest } from './grpc/llm-grpc.js';
import { Guard, admissionOf, checkBodySize, type Admission, type RateDecision, type RateLimits } from './guard.js';
import { type GuardHooks, guardGrpcReply, guardGrpcRequest, guardGrpcStream, guardHttp } from './guards/guard-flow.js';
import { estimatedTokens, type GenerationContext, type HttpChunk, type RouteContext } from './handler-context.js';
import type { Route } from './http-routes.js';
import { resolveLimits, type LLMServerLimits } from './llm-server-options.js';
import { malformedBodyError } from './malformed-body.js';
import { PiiFilter, type PiiOptions } from './pii/pii-filter.js';
import { piiDetectionsCounter, piiOutputFilter } from './pii/pii-guard.js';
import type { RateLimiter } from './rate-limiter.js';
import { COST_HEADER, deploymentPrices, formatUsd, requestCostUsd, UsageCounters } from './request-cost.js';

/** The options a gate reads (LLMServerOptions and LLMFrontOptions share these names). */
export interface GateOptions {
  apiKeys?: string[];
  apiKeyFile?: string;
  adminKeys?: string[];
  rateLimits?: RateLimits;
  limits?: LLMServerLimits;
  logPrompts?: boolean;
  auditLog?: AuditSink;
  pii?: PiiOptions;
}

/** The part of a generation context the gate fills in; the caller adds the backend, limits and model. */
export type ContextBase = Pick<GenerationContext, 'requestId' | 'signal' | 'usage' | 'admit'>;

export class RequestGate {
  readonly guard: Guard;
  /** The built-in PII guard (options.pii); undefined when off. */
  readonly pii: GuardHooks | undefined;
  /** Tokens served through this gate, for cost accounting (request-cost.ts). */
  readonly usageCounters = new UsageCounters();
  readonly #options: GateOptions;
  readonly #audit: AuditLog;
  /** The server's own admin keys, for model paths when the proxy has no keys (see isAdmin). */
  readonly #adminKeys: KeyRing;
  readonly #piiRegistry = new Registry();
  readonly #rateLimiter: DeploymentHandle<RateLimiter> | undefined;

  constructor(options: GateOptions, rateLimiter?: DeploymentHandle<RateLimiter>) {
    if (rateLimiter && options.rateLimits) {
      throw new LLMServerConfigError(
        'give rateLimits (buckets in each replica) or rateLimiter (buckets shared by all replicas), not both',
      );
    }
    this.#options = options;
    this.#rateLimiter = rateLimiter;
    this.guard = new Guard({
      // Admin keys call the APIs too (they may do everything).
      apiKeys: [...(options.apiKeys ?? []), ...(options.adminKeys ?? [])],
      apiKeyFile: options.apiKeyFile,
      rateLimits: options.rateLimits,
    });
    this.#adminKeys = new KeyRing({ adminKeys: options.adminKeys ?? [] });
    this.#audit = new AuditLog(options.auditLog ?? 'stderr');
    if (options.pii) {
      const detections = piiDetectionsCounter(this.#piiRegistry);
      const filter = new PiiFilter(options.pii, (kind, where, n, mode) => detections.inc({ kind, where, mode }, n));
      this.pii = {
        checkPrompt: async (text, param) => filter.checkPrompt(text, param),
        outputFilter: () => (filter.options.outputs ? piiOutputFilter(filter) : null),
      };
    }
  }

  /** The PII guard's counters (prom-client JSON), empty without one. */
  async piiMetrics(): Promise<unknown[]> {
    return this.pii ? this.#piiRegistry.getMetricsAsJSON() : [];
  }

  /**
   * One HTTP request on `route`: authenticated, size- and JSON-checked, then `context` (which may wait for
   * a model, refuse the route, pick a graph) builds the handler's context; the handler's chunks pass the PII
   * guard and get the cost header; a failure before the head is answered in the route's own shape.
   */
  async *http<C extends RouteContext>(
    req: HttpRequestLike,
    route: Route<C>,
    context: (base: ContextBase) => Promise<C>,
  ): AsyncGenerator<HttpChunk> {
    const started = performance.now();
    const base = { requestId: req.requestId, signal: getRequestContext()?.signal };
    const usage = { promptTokens: 0, completionTokens: 0 };
    let keyId = 'unauthenticated';
    let status = 0;
    let errorCode: string | undefined;
    let admission: Admission | undefined;
    let ctx: C | undefined;
    try {
      // The proxy's key check comes first: refused there, refused here, in this route's error shape.
      if (req.authError !== undefined) throw new AuthenticationError(req.authError);
      if (route.authenticated) keyId = req.auth ? req.auth.keyId : this.guard.authenticate(req.headers, req.clientIp);
      if (req.method === 'POST') {
        checkBodySize(
          req.headers,
          req.body,
          this.#options.limits?.maxBodyBytes ?? resolveLimits(undefined, 2).maxBodyBytes,
        );
        if (req.bodyError !== undefined) throw malformedBodyError(req.bodyError);
      }
      const c = await context({
        ...base,
        usage,
        admit: async (p) => {
          admission = await this.admit(keyId, estimatedTokens(p));
        },
      });
      ctx = c;
      const chunks = this.pii ? guardHttp(req, this.pii, (r) => route.handler(r, c)) : route.handler(req, c);
      for await (const chunk of chunks) {
        if (typeof chunk !== 'string' && status === 0) {
          status = chunk.status;
          // A whole reply's head comes after its tokens were counted: it can say what they cost.
          const cost =
            chunk.body !== undefined && status === 200 ? requestCostUsd(deploymentPrices(), usage) : undefined;
          if (cost !== undefined) {
            yield { ...chunk, headers: { ...chunk.headers, [COST_HEADER]: formatUsd(cost) } };
            continue;
          }
        }
        yield chunk;
      }
    } catch (err) {
      errorCode = (err as { code?: string }).code ?? 'E_INTERNAL';
      if (status !== 0) throw err;
      const head = route.renderError(err);
      status = head.status;
      yield head;
    } finally {
      if (admission) this.settle(admission, usage.promptTokens + usage.completionTokens);
      if (base.signal?.aborted && status < 400) status = 499;
      this.#record(req.requestId, keyId, route.name, status, usage, started, errorCode, ctx?.promptText);
    }
  }

  /**
   * A gRPC call (llm.proto): authenticates (the call's metadata, else the request's api_key), then
   * `context` builds the context. Returns it with `end`, which settles the rate limit and writes the audit
   * line; a failure here is already recorded and thrown as core's typed error (the gRPC status).
   */
  async grpcCall<C extends GenerationContext>(
    request: GrpcGenerateRequest,
    callInfo: GrpcCallInfo | undefined,
    route: string,
    context: (base: ContextBase) => Promise<C>,
  ): Promise<{ ctx: C; end: (failed: number, err?: unknown) => void }> {
    const rc = getRequestContext();
    const requestId = rc?.requestId ?? `grpc-${Date.now()}`;
    const started = performance.now();
    let keyId = 'unauthenticated';
    let admission: Admission | undefined;
    const usage = { promptTokens: 0, completionTokens: 0 };
    const end = (failed: number, err?: unknown) => {
      if (admission) this.settle(admission, usage.promptTokens + usage.completionTokens);
      const code = (err as { code?: string } | undefined)?.code;
      const status = failed ? ((err as { status?: number }).status ?? 500) : 200;
      this.#record(requestId, keyId, route, status, usage, started, code, undefined);
    };
    try {
      keyId = callInfo?.auth
        ? callInfo.auth.keyId
        : this.guard.authenticate(grpcAuthHeaders(request, callInfo), grpcClientOf(callInfo));
      const ctx = await context({
        requestId,
        signal: rc?.signal,
        usage,
        admit: async (p) => {
          admission = await this.admit(keyId, estimatedTokens(p));
        },
      });
      return { ctx, end };
    } catch (err) {
      end(1, err);
      throw toCoreError(err);
    }
  }

  /** llm.proto Embed through the gate: grpcCall, `run`, `end` (vectors carry no text for the PII guard). */
  async grpcPlain<C extends GenerationContext>(
    request: unknown,
    callInfo: GrpcCallInfo | undefined,
    route: string,
    context: (base: ContextBase) => Promise<C>,
    run: (request: unknown, ctx: C) => Promise<unknown>,
  ): Promise<unknown> {
    const call = await this.grpcCall(request as GrpcGenerateRequest, callInfo, route, context);
    try {
      const reply = await run(request, call.ctx);
      call.end(0);
      return reply;
    } catch (err) {
      call.end(1, err);
      throw toCoreError(err);
    }
  }

  /** llm.proto Generate through the gate: grpcCall, the PII guard on the request and the reply, `end`. */
  async grpcUnary<C extends GenerationContext>(
    request: GrpcGenerateRequest,
    callInfo: GrpcCallInfo | undefined,
    route: string,
    context: (base: ContextBase) => Promise<C>,
    run: (request: GrpcGenerateRequest, ctx: C) => Promise<unknown>,
  ): Promise<unknown> {
    const call = await this.grpcCall(request, callInfo, route, context);
    try {
      const checked = this.pii ? ((await guardGrpcRequest({ ...request }, this.pii)) as GrpcGenerateRequest) : request;
      const reply = await run(checked, call.ctx);
      call.end(0);
      return this.pii ? guardGrpcReply(reply, this.pii) : reply;
    } catch (err) {
      call.end(1, err);
      throw toCoreError(err);
    }
  }

  /** llm.proto GenerateStream through the gate, as grpcUnary with the PII guard on every message. */
  async *grpcStream<C extends GenerationContext>(
    request: GrpcGenerateRequest,
    callInfo: GrpcCallInfo | undefined,
    route: string,
    context: (base: ContextBase) => Promise<C>,
    run: (request: GrpcGenerateRequest, ctx: C) => AsyncIterable<unknown>,
  ): AsyncGenerator<unknown> {
    const call = await this.grpcCall(request, callInfo, route, context);
    let failed: unknown;
    try {
      if (this.pii) {
        const checked = (await guardGrpcRequest({ ...request }, this.pii)) as GrpcGenerateRequest;
        yield* guardGrpcStream(run(checked, call.ctx), this.pii);
      } else yield* run(request, call.ctx);
    } catch (err) {
      failed = err;
      throw toCoreError(err);
    } finally {
      call.end(failed === undefined ? 0 : 1, failed);
    }
  }

  /**
   * May this request see model file paths? An admin key (checked by the proxy, or by the server's own
   * adminKeys); on a server with no keys at all, everyone (it listens on loopback unless told otherwise).
   */
  isAdmin(req: HttpRequestLike): boolean {
    if (req.auth) return req.auth.role === 'admin';
    if (this.#adminKeys.enabled) return this.#adminKeys.check(req.headers.authorization, 'admin').ok;
    return !this.guard.requiresKey;
  }

  /** Rate limits: the shared RateLimiter when there is one, else this replica's buckets. Throws RateLimitError. */
  async admit(keyId: string, estimated: number): Promise<Admission> {
    const limiter = this.#rateLimiter;
    if (!limiter) return this.guard.admit(keyId, estimated);
    let decision: RateDecision;
    try {
      decision = await limiter.admit(keyId, estimated);
    } catch (err) {
      if (getRequestContext()?.signal.aborted) throw err; // the client left: not the limiter's fault
      throw new RateLimiterUnavailableError(`The rate limiter cannot be reached: ${(err as Error).message}`);
    }
    return admissionOf(keyId, decision);
  }

  settle(admission: Admission, usedTokens: number): void {
    const limiter = this.#rateLimiter;
    if (!limiter) return this.guard.settle(admission, usedTokens);
    if (admission.reservedTokens === 0) return;
    // A signal of its own: the request's may already be aborted (client gone), and the refund must still arrive.
    limiter
      .options({ signal: new AbortController().signal })
      .settle(admission.keyId, admission.reservedTokens, usedTokens)
      .catch(() => {
        /* the limiter is gone; its buckets went with it */
      });
  }

  #record(
    requestId: string,
    keyId: string,
    route: string,
    status: number,
    usage: { promptTokens: number; completionTokens: number },
    started: number,
    errorCode: string | undefined,
    prompt: string | undefined,
  ): void {
    this.usageCounters.add(usage);
    const costUsd = requestCostUsd(deploymentPrices(), usage);
    this.#audit.record({
      requestId,
      keyId,
      route,
      status,
      promptTokens: usage.promptTokens,
      completionTokens: usage.completionTokens,
      ...(costUsd !== undefined ? { costUsd } : {}),
      latencyMs: performance.now() - started,
      ...(this.#options.logPrompts && prompt !== undefined ? { prompt } : {}),
      ...(errorCode ? { error: errorCode } : {}),
    });
  }
}
