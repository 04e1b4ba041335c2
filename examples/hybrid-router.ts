/**
 * Hybrid routing between a small and a large model: a cheap heuristic (prompt length and content) or
 * the small model's own confidence picks the model per request; if one fails, retries with backoff
 * and a circuit breaker send requests to the other. An exact-match ResponseCache sits in front.
 *
 *   serve run examples/hybrid-router.ts:app
 *   serve run examples/hybrid-router.ts:app small=PATH large=PATH tokenizer=PATH classifier=confidence
 *
 * Defaults: models/flotilla-stories/{draft,target} when both are present, else the test
 * fixtures llama2xs-260K (small) and stories260K (large).
 *
 * It speaks the models' OpenAI and TGI APIs (model 'hybrid', none or any other name, as TGI: the router picks;
 * a model's own name: that model; the reply's `x-flotilla-model` says which answered) and llm.proto over gRPC:
 *   curl -si localhost:8000/v1/chat/completions -H 'content-type: application/json' \
 *     -d '{"model":"hybrid","messages":[{"role":"user","content":"Explain why the sky is blue"}],"max_tokens":24}'
 *   curl -s localhost:8000/metrics | grep flotilla_hybrid_
 * Through a handle: `await handle.generate({ prompt: 'Explain why ...', temperature: 0, max_tokens: 32 })`.
 */
import { deployment } from '@flotilla/core';
import { HybridRouter, LLMServer, ResponseCache, type LLMServerOptions } from '@flotilla/deployments';
import { defaultPair } from './speculative.js';

@deployment({ maxOngoingRequests: 256, placement: 'thread' })
export class Small extends LLMServer {}

@deployment({ maxOngoingRequests: 256, placement: 'process' })
export class Large extends LLMServer {}

@deployment()
export class Router extends HybridRouter {}

@deployment()
export class CachedRouter extends ResponseCache {}

export function app(args: { small?: string; large?: string; tokenizer?: string; classifier?: string } = {}) {
  const pair = defaultPair();
  const tokenizer = args.tokenizer ?? pair.tokenizer;
  const llm = (model: string): LLMServerOptions => ({
    model,
    numThreads: 1,
    auditLog: 'none',
    ...(tokenizer ? { tokenizer } : {}),
  });
  const classifier = args.classifier === 'confidence' ? 'confidence' : 'heuristic';
  const router = Router.bind(Small.bind(llm(args.small ?? pair.draft)), Large.bind(llm(args.large ?? pair.target)), {
    classifier,
  });
  // The cache forwards HTTP (handleHttp) and llm.proto calls (grpcGenerate) to the router.
  return CachedRouter.bind(router, { ttlMs: 60_000 });
}
