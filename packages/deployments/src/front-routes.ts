/**
 * LLMFront's HTTP route table: LLMServer's routes (the same handlers: openai/routes.ts,
 * openai/responses-api.ts, openai/embeddings.ts, openai/tokenize.ts, tgi/routes.ts) over the graph a request
 * names, and a /v1/models that lists every graph. /v1/embeddings, /tokenize and /detokenize reach the graph's
 * optional methods (graph-tools.ts): a graph that does not declare them is a 400 naming the model.
 */
import type { HttpRequestLike } from '@flotilla/core';
import { ModelNotFoundError } from './errors.js';
import type { GenerationContext, HttpChunk, ModelInfo, RouteContext, RouteHandler } from './handler-context.js';
import { lookupRoute, type Route } from './http-routes.js';
import { type Embedder, embeddingsRoute } from './openai/embeddings.js';
import { responses } from './openai/responses-api.js';
import { detokenizeRoute, type TextTokenizer, tokenizeRoute } from './openai/tokenize.js';
import { chatCompletions, completions, modelList, openAiError } from './openai/routes.js';
import { generate, generateStream, info, tgiError } from './tgi/routes.js';

/** One graph (or one model of a multiplexed catalogue) as /v1/models lists it. */
export interface CatalogEntry {
  model: ModelInfo;
  /** Null when not known without loading the model (MultiModelServer's models not loaded in this replica). */
  maxModelLen: number | null;
  description?: string;
}

/** What the listing routes read: every model served (LLMFront's graphs, MultiModelServer's catalogue). */
export interface CatalogContext extends RouteContext {
  catalog(): Promise<CatalogEntry[]>;
}

/** A generation context plus the front's catalog (every graph, for /v1/models) and the graph's optional parts. */
export interface FrontContext extends GenerationContext, CatalogContext {
  /** The picked graph's embeddings; throws UnsupportedTaskError where the graph has none. */
  embedder(): Embedder;
  /** The picked graph's tokenizer; throws UnsupportedTaskError where the graph has none. */
  textTokenizer(): TextTokenizer;
}

async function* listModels(_req: HttpRequestLike, ctx: CatalogContext): AsyncGenerator<HttpChunk> {
  yield { status: 200, body: { object: 'list', data: (await ctx.catalog()).map(entryOf) } };
}

async function* oneModel(req: HttpRequestLike, ctx: CatalogContext): AsyncGenerator<HttpChunk> {
  const id = decodeURIComponent(req.path.replace(/\/+$/, '').slice('/v1/models/'.length));
  const all = await ctx.catalog();
  const found = all.find((e) => e.model.name === id);
  if (!found)
    throw new ModelNotFoundError(
      `The model '${id}' does not exist; this server serves '${all.map((e) => e.model.name).join("', '")}'.`,
      'model',
    );
  yield { status: 200, body: entryOf(found) };
}

function entryOf(e: CatalogEntry) {
  const entry = modelList(e.model, e.maxModelLen).data[0]!;
  return e.description && !e.model.randomWeights ? { ...entry, description: e.description } : entry;
}

const openai = (name: string, handler: RouteHandler<FrontContext>, generates = true): Route<FrontContext> => ({
  name,
  handler,
  renderError: openAiError,
  authenticated: true,
  generates,
});
const tgi = (name: string, handler: RouteHandler<FrontContext>, generates = true): Route<FrontContext> => ({
  name,
  handler,
  renderError: tgiError,
  authenticated: true,
  generates,
});

const ROUTES: Record<string, Route<FrontContext>> = {
  'POST /v1/completions': openai('POST /v1/completions', completions),
  'POST /v1/chat/completions': openai('POST /v1/chat/completions', chatCompletions),
  'POST /v1/responses': openai('POST /v1/responses', responses),
  'GET /v1/models': openai('GET /v1/models', listModels, false),
  'POST /v1/embeddings': {
    ...openai(
      'POST /v1/embeddings',
      embeddingsRoute<FrontContext>((ctx) => ctx.embedder()),
      false,
    ),
    embeds: true,
  },
  'POST /tokenize': openai(
    'POST /tokenize',
    tokenizeRoute<FrontContext>((ctx) => ctx.textTokenizer()),
    false,
  ),
  'POST /detokenize': openai(
    'POST /detokenize',
    detokenizeRoute<FrontContext>((ctx) => ctx.textTokenizer()),
    false,
  ),
  'POST /generate': tgi('POST /generate', generate),
  'POST /generate_stream': tgi('POST /generate_stream', generateStream),
  'POST /': tgi('POST /', generate),
  'GET /info': tgi('GET /info', info, false),
};

const MODEL_ROUTE = openai('GET /v1/models/{id}', oneModel, false);

const listing = (name: string, handler: RouteHandler<CatalogContext>): Route<CatalogContext> => ({
  name,
  handler,
  renderError: openAiError,
  authenticated: true,
  generates: false,
});
const LIST_ROUTE = listing('GET /v1/models', listModels);
const LIST_ONE_ROUTE = listing('GET /v1/models/{id}', oneModel);

/** GET /v1/models and /v1/models/{id} over a catalog (MultiModelServer's), or undefined for other requests. */
export function findCatalogRoute(req: HttpRequestLike): Route<CatalogContext> | undefined {
  if (req.method !== 'GET') return undefined;
  const path = req.path.replace(/\/+$/, '');
  if (path === '/v1/models') return LIST_ROUTE;
  return path.startsWith('/v1/models/') ? LIST_ONE_ROUTE : undefined;
}

/** Whether a route speaks TGI (its requests name no model; token texts go on every event). */
export function isTgiRoute(route: Route<FrontContext>): boolean {
  return route.renderError === tgiError;
}

/** The front's route for a request (lookupRoute over its table). */
export function findFrontRoute(req: HttpRequestLike): Route<FrontContext> {
  return lookupRoute(
    ROUTES,
    MODEL_ROUTE,
    req,
    'front speaks OpenAI (/v1/completions, /v1/chat/completions, /v1/responses, /v1/embeddings, /v1/models, ' +
      "vLLM's /tokenize and /detokenize) and TGI (/generate, /generate_stream, /info, /health) over its generation graphs.",
  );
}
