/**
 * An exact-match ResponseCache in front of one LLM deployment: deterministic requests (temperature 0,
 * or seeded) are answered from an LRU cache with a TTL; sampled requests always reach the model.
 *
 *   serve run examples/cached-llm.ts:app
 *   serve run examples/cached-llm.ts:app model=PATH [tokenizer=PATH] ttl_ms=60000 max_entries=1000
 *
 * Default model: the same as `npm start` (examples/default.ts). It speaks the model's OpenAI and TGI APIs
 * and llm.proto over gRPC; a whole greedy (or seeded) OpenAI reply is answered again from the cache
 * (`x-flotilla-cache: hit`):
 *   curl -si localhost:8000/v1/completions -H 'content-type: application/json' \
 *     -d '{"prompt":"Once upon a time","max_tokens":32,"temperature":0}'
 * Through a handle: `await handle.generate({ prompt: 'Once upon a time', temperature: 0, max_tokens: 32 })`,
 * and `await handle.cacheStats()` for hits and misses (also on /metrics as flotilla_response_cache_*).
 */
import { deployment } from '@flotilla/core';
import { LLMServer, ResponseCache } from '@flotilla/deployments';
import { defaultModel } from './default.js';

@deployment({ maxOngoingRequests: 256, placement: 'thread' })
export class CachedModel extends LLMServer {}

@deployment()
export class Cache extends ResponseCache {}

export function app(args: { model?: string; tokenizer?: string; ttl_ms?: string; max_entries?: string } = {}) {
  const model = args.model ?? defaultModel();
  const llm = CachedModel.bind({
    numThreads: 1,
    auditLog: 'none',
    ...(model ? { model } : {}),
    ...(args.tokenizer ? { tokenizer: args.tokenizer } : {}),
  });
  return Cache.bind(llm, {
    ttlMs: Number(args.ttl_ms ?? 60_000),
    ...(args.max_entries ? { maxEntries: Number(args.max_entries) } : {}),
  });
}
