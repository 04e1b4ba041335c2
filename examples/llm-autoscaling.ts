/**
 * An LLM server scaled by engine pressure: `numReplicas: 'auto'` with the 'llm' autoscaling policy, which
 * reads each replica's autoscalingMetrics() — the engine's waiting queue and KV-cache use — besides
 * Ray's ongoing-request formula. Requests piling up in the engines' waiting queues (more than 2 per
 * replica) or a KV cache over 90% full add replicas; once the queues are empty and KV use is under 50%,
 * replicas go again, down to `min`.
 *
 *   serve run examples/llm-autoscaling.ts:app
 *   serve run examples/llm-autoscaling.ts:app model=PATH min=1 max=4 max_num_seqs=4 kv_cache_mb=8
 *
 * Defaults: the model `npm start` serves, 1 to 2 replicas, short delays (upscale 1 s, downscale 5 s) so
 * that a burst shows the policy at work; with a small max_num_seqs / kv_cache_mb a few concurrent long
 * requests are enough. Watch it with `serve status` (replicas and "scaling decisions", each with the
 * waiting count and KV use it saw) or `curl -s localhost:8000/-/status`. Load:
 *   for i in $(seq 8); do curl -s localhost:8000/v1/completions -H 'content-type: application/json' \
 *     -d '{"prompt":"Once upon a time","max_tokens":400,"ignore_eos":true}' >/dev/null & done; wait
 *
 * Other key=value options: those of examples/llm-server.ts (model, tokenizer, max_num_seqs, kv_cache_mb, ...).
 */
import { deployment } from '@flotilla/core';
import { LLMServer } from '@flotilla/deployments';
import { defaultModel } from './default.js';
import { llmOptions } from './llm-server.js';

/** Many streams share one engine (continuous batching): a replica admits many requests, its engine queues the rest. */
@deployment({ maxOngoingRequests: 64, placement: 'thread', healthCheckPeriodS: 5 })
export class ScaledLLM extends LLMServer {}

export function app(args: Record<string, string | undefined> = {}) {
  const { min, max, upscale_delay_s, downscale_delay_s, ...rest } = args;
  const model = rest.model ?? defaultModel();
  return ScaledLLM.bind(llmOptions({ ...rest, ...(model ? { model } : {}) })).options({
    numReplicas: 'auto',
    autoscaling: {
      policy: 'llm',
      minReplicas: Number(min ?? 1),
      maxReplicas: Number(max ?? 2),
      // Ongoing requests alone should not scale an LLM replica, which runs many at once: the engine's
      // waiting queue and KV use say when it is full.
      targetOngoingRequests: 64,
      upscaleDelayS: Number(upscale_delay_s ?? 1),
      downscaleDelayS: Number(downscale_delay_s ?? 5),
      metricsIntervalS: 0.5,
      lookBackPeriodS: 2,
    },
  });
}
