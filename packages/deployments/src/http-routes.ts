/**
 * The LLM server's HTTP route table: which handler serves METHOD PATH, in which protocol's error shape,
 * and whether it needs an API key (everything but /health, which load balancers and probes call).
 */
import type { HttpRequestLike, HttpResponseLike } from '@flotilla/core';
import { type LLMApiError, MethodNotAllowedError, RouteNotFoundError } from './errors.js';
import type { HandlerContext, RouteContext, RouteHandler } from './handler-context.js';
import { embeddings } from './openai/embeddings.js';
import { responses } from './openai/responses-api.js';
import { loadLoraAdapter, unloadLoraAdapter } from './openai/lora-routes.js';
import { chatCompletions, completions, model, models, openAiError } from './openai/routes.js';
import { detokenize, tokenize } from './openai/tokenize.js';
import { generate, generateStream, info, tgiError } from './tgi/routes.js';

export interface Route<C extends RouteContext = HandlerContext> {
  /** For audit lines and metrics: e.g. 'POST /v1/completions'. */
  name: string;
  handler: RouteHandler<C>;
  renderError: (err: unknown) => HttpResponseLike;
  /** Needs an API key (when keys are configured). */
  authenticated: boolean;
  /** Runs a generation (waits for the model, counts against rate limits). */
  generates: boolean;
  /** Computes embeddings (served unless the server's task is 'generate'). */
  embeds?: boolean;
}

const openai = (name: string, handler: RouteHandler, generates = true): Route => ({
  name,
  handler,
  renderError: openAiError,
  authenticated: true,
  generates,
});
const tgi = (name: string, handler: RouteHandler, generates = true): Route => ({
  name,
  handler,
  renderError: tgiError,
  authenticated: true,
  generates,
});

const ROUTES: Record<string, Route> = {
  'POST /v1/completions': openai('POST /v1/completions', completions),
  'POST /v1/chat/completions': openai('POST /v1/chat/completions', chatCompletions),
  'POST /v1/responses': openai('POST /v1/responses', responses),
  'POST /v1/embeddings': { ...openai('POST /v1/embeddings', embeddings, false), embeds: true },
  'GET /v1/models': openai('GET /v1/models', models, false),
  'POST /v1/load_lora_adapter': openai('POST /v1/load_lora_adapter', loadLoraAdapter, false),
  'POST /v1/unload_lora_adapter': openai('POST /v1/unload_lora_adapter', unloadLoraAdapter, false),
  'POST /tokenize': openai('POST /tokenize', tokenize, false),
  'POST /detokenize': openai('POST /detokenize', detokenize, false),
  'POST /generate': tgi('POST /generate', generate),
  'POST /generate_stream': tgi('POST /generate_stream', generateStream),
  'POST /': tgi('POST /', generate),
  'GET /info': tgi('GET /info', info, false),
};

/** GET /v1/models/{id} (the one route with a parameter). */
const MODEL_ROUTE = openai('GET /v1/models/{id}', model, false);

/**
 * The route for a request in `table` (keys 'METHOD /path'), `modelRoute` for GET /v1/models/{id};
 * unknown paths and wrong methods get a handler that throws the right error in the right API's shape.
 * `speaks` completes "No route ...: this <speaks>" for clients that asked for a path nobody serves.
 */
export function lookupRoute<C extends RouteContext>(
  table: Readonly<Record<string, Route<C>>>,
  modelRoute: Route<C>,
  req: HttpRequestLike,
  speaks: string,
): Route<C> {
  const path = req.path.replace(/\/+$/, '') || '/';
  const route = table[`${req.method} ${path}`];
  if (route) return route;
  if (req.method === 'GET' && path.startsWith('/v1/models/')) return modelRoute;
  const render = path.startsWith('/v1/') || path === '/tokenize' || path === '/detokenize' ? openAiError : tgiError;
  const allowed = Object.keys(table)
    .filter((k) => k.endsWith(` ${path}`))
    .map((k) => k.split(' ')[0]);
  const error: LLMApiError =
    allowed.length > 0
      ? new MethodNotAllowedError(`${req.method} is not allowed on ${path}; use ${allowed.join(' or ')}.`)
      : new RouteNotFoundError(`No route ${req.method} ${path}. This ${speaks}`);
  // eslint-disable-next-line require-yield
  const handler: RouteHandler<C> = async function* () {
    throw error;
  };
  return { name: `${req.method} (unknown)`, handler, renderError: render, authenticated: false, generates: false };
}

/** LLMServer's route for a request (lookupRoute over its table). */
export function findRoute(req: HttpRequestLike): Route {
  return lookupRoute(
    ROUTES,
    MODEL_ROUTE,
    req,
    "server speaks OpenAI (/v1/completions, /v1/chat/completions, /v1/responses, /v1/embeddings, /v1/models, vLLM's " +
      '/tokenize and /detokenize) and TGI (/generate, /generate_stream, /info, /health).',
  );
}
