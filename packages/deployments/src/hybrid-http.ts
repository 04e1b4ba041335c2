/**
 * HybridRouter's HTTP side (the models' OpenAI and TGI APIs): a generation request is forwarded to the
 * chosen model's LLMServer handleHttp, its reply streamed back with `x-flotilla-model: small|large` on
 * the head; before the head a failure (a thrown call, a 5xx) falls back to the other model. GET
 * /v1/models lists the router's name and both models; /health is 200 while either model is; other
 * routes go to the model named, else the large one.
 */
import type { DeploymentHandle, HttpRequestLike, HttpResponseLike } from '@flotilla/core';
import { apiOf } from './guards/http-rewrite.js';
import type { HttpChunk } from './handler-context.js';
import { noModelAnswered } from './hybrid-errors.js';
import { isRecord, type ModelChoice, openStream, reportedTokens, sseUsageTokens } from './hybrid-policy.js';
import { openAiError } from './openai/routes.js';
import { tgiError } from './tgi/routes.js';

/** Where a request goes: the models in the order to try, the request to send, and why the first. */
export interface Routed {
  order: ModelChoice[];
  request: Record<string, unknown>;
  reason: string;
}

export type Attempt<T> = { ok: true; value: T } | { ok: false; error?: unknown };

/** What of the router the forwarding uses: its routing, the models' handles, retries and accounting. */
export interface HybridCalls {
  /** The router's own model name. */
  alias(): string;
  /** The order to try the models in (`unnamed` strips a name the classifier replaced); ModelNotFoundError. */
  route(
    req: Record<string, unknown>,
    unnamed: (req: Record<string, unknown>) => Record<string, unknown>,
  ): Promise<Routed>;
  /** Which model a request's `model` names, if either. */
  named(name: unknown): Promise<ModelChoice | undefined>;
  handle(model: ModelChoice): DeploymentHandle;
  /** `call` under the model's circuit breaker, retried with backoff. */
  withRetries<T>(model: ModelChoice, call: (h: DeploymentHandle) => Promise<T>): Promise<Attempt<T>>;
  /** Counts an answer: the decision, its cost and the savings. */
  answered(model: ModelChoice, reason: string, req: Record<string, unknown>, tokens: number | undefined): void;
}

/** HybridRouter.handleHttp: the reply of the model that answered, or the last 5xx head, or a 503 in the API's shape. */
export async function* forwardHttp(router: HybridCalls, req: HttpRequestLike): AsyncGenerator<HttpChunk> {
  const path = req.path.replace(/\/+$/, '') || '/';
  const api = req.bodyError === undefined ? apiOf(req.method, path) : 'none';
  if (req.method === 'GET' && path === '/health') {
    yield await health(router, req);
    return;
  }
  if (req.method === 'GET' && path === '/v1/models') {
    yield await models(router, req);
    return;
  }
  const body = isRecord(req.body) ? req.body : {};
  if (api === 'none') {
    // Routes that generate nothing (tokenize, /info, /v1/models/{id}, unknown paths): the model named, else the large one.
    const named = await router.named(body.model);
    yield* router.handle(named ?? 'large').stream.handleHttp!(req) as AsyncIterable<HttpChunk>;
    return;
  }
  let routed: Routed;
  try {
    routed = await router.route(body, (r) => {
      const out = { ...r };
      delete out.model;
      return out;
    });
  } catch (err) {
    yield api === 'tgi' ? tgiError(err) : openAiError(err);
    return;
  }
  const { order, request, reason } = routed;
  const forward: HttpRequestLike = request === body ? req : { ...req, body: request };
  let lastError: unknown;
  let lastHead: HttpResponseLike | undefined;
  for (const model of order) {
    const attempt = await router.withRetries(model, async (h) => {
      const opened = await openStream(h.stream.handleHttp!(forward) as AsyncIterable<HttpChunk>);
      const head = opened.first;
      if (typeof head !== 'string' && head !== undefined && head.status >= 500) {
        lastHead = head;
        await opened.value[Symbol.asyncIterator]().return?.();
        throw new Error(`${model} model answered ${head.status}`);
      }
      return opened;
    });
    if (!attempt.ok) {
      lastError = attempt.error ?? lastError;
      continue;
    }
    let headSeen = false;
    let tokens: number | undefined;
    for await (const chunk of attempt.value.value) {
      if (!headSeen && typeof chunk !== 'string') {
        headSeen = true;
        tokens = reportedTokens(chunk.body);
        yield { ...chunk, headers: { ...chunk.headers, 'x-flotilla-model': model } };
        continue;
      }
      if (typeof chunk === 'string') tokens = sseUsageTokens(chunk) ?? tokens;
      yield chunk;
    }
    router.answered(model, model === order[0] ? reason : 'fallback', body, tokens);
    return;
  }
  if (lastHead) {
    yield lastHead;
    return;
  }
  const err = noModelAnswered(lastError);
  const rendered = api === 'tgi' ? tgiError(err) : openAiError(err);
  yield { ...rendered, status: 503 };
}

/** GET /health: 200 while either model is, with both models' statuses. */
async function health(router: HybridCalls, req: HttpRequestLike): Promise<HttpChunk> {
  const heads = await Promise.all(
    (['small', 'large'] as const).map(async (m) => {
      try {
        for await (const c of router.handle(m).stream.handleHttp!(req) as AsyncIterable<HttpChunk>)
          if (typeof c !== 'string') return c.status;
      } catch {
        /* unreachable: not healthy */
      }
      return 503;
    }),
  );
  const [small, large] = heads as [number, number];
  return small === 200 || large === 200
    ? { status: 200, body: { small, large } }
    : { status: 503, body: { error: 'no model is healthy', error_type: 'unhealthy', small, large } };
}

/** GET /v1/models: the router's own name first, then both models' entries. */
async function models(router: HybridCalls, req: HttpRequestLike): Promise<HttpChunk> {
  const lists = await Promise.all(
    (['small', 'large'] as const).map(async (m) => {
      for await (const c of router.handle(m).stream.handleHttp!(req) as AsyncIterable<HttpChunk>) {
        if (typeof c === 'string') continue;
        if (c.status !== 200) return c;
        return ((c.body as { data?: unknown[] })?.data ?? []) as Array<Record<string, unknown>>;
      }
      return [];
    }),
  );
  const refused = lists.find((l): l is HttpResponseLike => !Array.isArray(l));
  if (refused) return refused;
  const data = (lists as Array<Array<Record<string, unknown>>>).flat();
  const alias = router.alias();
  const lens = data.map((d) => d.max_model_len).filter((n): n is number => typeof n === 'number');
  return {
    status: 200,
    body: {
      object: 'list',
      data: [
        {
          id: alias,
          object: 'model',
          created: Math.min(...data.map((d) => Number(d.created) || 0)),
          owned_by: 'flotilla',
          root: alias,
          max_model_len: lens.length > 0 ? Math.min(...lens) : null,
          description: 'routes each request to the small or the large model',
        },
        ...data,
      ],
    },
  };
}
