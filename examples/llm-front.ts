/**
 * Two generation graphs behind one OpenAI / TGI / llm.proto endpoint, chosen by the request's `model` (as
 * Ray Serve LLM's OpenAI app does): `speculative` (a SpeculativePipeline: draft and target in their own
 * processes) and `hybrid` (a ResponseCache in front of a HybridRouter over a small and a large LLMServer).
 * LLMFront checks keys, limits and the PII guard and writes the audit line as LLMServer does.
 *
 *   serve run examples/llm-front.ts:app
 *   serve run examples/llm-front.ts:app api_keys=sk-1,sk-2 target=PATH draft=PATH tokenizer=PATH
 *
 *   curl -s localhost:8000/v1/models
 *   curl -s localhost:8000/v1/completions -H 'content-type: application/json' \
 *     -d '{"model":"speculative","prompt":"Once upon a time","max_tokens":32,"temperature":0}'
 *   curl -s localhost:8000/v1/chat/completions -H 'content-type: application/json' \
 *     -d '{"model":"hybrid","messages":[{"role":"user","content":"Explain why the sky is blue"}],"max_tokens":24}'
 *
 * A name the endpoint does not serve is 404 model_not_found; TGI's /generate goes to the first graph unless
 * the body names another with a top-level `model`.
 */
import { deployment } from '@flotilla/core';
import {
  DraftModel,
  HybridRouter,
  LLMFront,
  LLMServer,
  ResponseCache,
  SpeculativePipeline,
  TargetModel,
  type LLMServerOptions,
} from '@flotilla/deployments';
import { defaultPair } from './speculative.js';

@deployment({ placement: 'process', maxOngoingRequests: 64 })
export class FrontDraft extends DraftModel {}

@deployment({ placement: 'process', maxOngoingRequests: 64 })
export class FrontTarget extends TargetModel {}

@deployment({ maxOngoingRequests: 64 })
export class FrontSpeculative extends SpeculativePipeline {}

@deployment({ maxOngoingRequests: 256, placement: 'thread' })
export class FrontSmall extends LLMServer {}

@deployment({ maxOngoingRequests: 256, placement: 'thread' })
export class FrontLarge extends LLMServer {}

@deployment()
export class FrontRouter extends HybridRouter {}

@deployment()
export class FrontCache extends ResponseCache {}

@deployment({ maxOngoingRequests: 512 })
export class Front extends LLMFront {}

export function app(args: { target?: string; draft?: string; tokenizer?: string; api_keys?: string } = {}) {
  const pair = defaultPair();
  const tokenizer = args.tokenizer ?? pair.tokenizer;
  const common = { numThreads: 1, ...(tokenizer ? { tokenizer } : {}) };
  const target = args.target ?? pair.target;
  const draft = args.draft ?? pair.draft;
  const speculative = FrontSpeculative.bind(
    FrontDraft.bind({ model: draft, ...common }),
    FrontTarget.bind({ model: target, ...common }),
    { k: 4 },
  );
  const llm = (model: string): LLMServerOptions => ({ model, auditLog: 'none', ...common });
  const hybrid = FrontCache.bind(FrontRouter.bind(FrontSmall.bind(llm(draft)), FrontLarge.bind(llm(target))), {
    ttlMs: 60_000,
  });
  const apiKeys = args.api_keys ? args.api_keys.split(',') : [];
  return Front.bind({ speculative, hybrid }, { ...(apiKeys.length > 0 ? { apiKeys } : {}) });
}
