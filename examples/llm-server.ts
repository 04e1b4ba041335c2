/**
 * One model served over OpenAI- and TGI-compatible HTTP and gRPC (protos/llm.proto).
 *
 *   serve run examples/llm-server.ts:app model=test/fixtures/models/stories260K/stories260K.bin
 *   serve run examples/llm-server.ts:app model=PATH tokenizer=PATH quantize=int8
 *   serve run examples/llm-server.ts:app model=GPTQ_OR_AWQ_DIR quantization=gptq   # pre-quantized (vLLM's name)
 *   serve run examples/llm-server.ts:app model=GPTQ_OR_AWQ_DIR activations=f32      # f32 activations: the dequantized model's logits
 *   serve run examples/llm-server.ts:app            # no model: random weights (said so at start and in /v1/models)
 *
 * Try it:
 *   curl -s localhost:8000/v1/models
 *   curl -s localhost:8000/v1/completions -H 'content-type: application/json' -d '{"prompt":"Once upon a time","max_tokens":32}'
 *   curl -sN localhost:8000/v1/chat/completions -H 'content-type: application/json' \
 *     -d '{"messages":[{"role":"user","content":"Tell me a story"}],"max_tokens":48,"stream":true}'
 *   curl -sN localhost:8000/generate_stream -H 'content-type: application/json' -d '{"inputs":"Lily","parameters":{"max_new_tokens":20}}'
 *   curl -s localhost:8000/metrics | grep flotilla_llm_
 *
 * Other options (key=value): served_name=NAME, api_keys=K1,K2, api_key_file=FILE, admin_keys=K1,K2 (also the
 * proxy's monitoring routes and /-/shutdown; the only keys shown model paths), metrics_keys=K1,K2 (/metrics, /-/status,
 * /-/dashboard only), max_num_seqs=N, kv_cache_mb=N, activations=int8|f32 (what quantized weights multiply on the CPU:
 * int8-quantized activations, the default and fastest, or the f32 ones; docs/quantized-checkpoints.md),
 * kv_cache_dtype=auto|f32|f16|int8|fp8 (default auto: f16 for a model held in f16; int8 on the CPU, fp8 on CUDA),
 * speculative_model=PATH num_speculative_tokens=K speculative_method=draft|ngram prompt_lookup_max=N prompt_lookup_min=N
 * speculative_disable_by_batch_size=N (speculative decoding in the engine, vLLM's names; default off),
 * strict_model_name=true (vLLM's 404 for a request naming another model; default: any name is this model, as on TGI),
 * vllm_metrics=false (drop the vllm: metric names; default on), pii=redact|block|log (personal data in
 * prompts and outputs; default off), task=auto|generate|embed (embed: /v1/embeddings and gRPC Embed only, as vLLM's
 * --task embed; default auto: everything), pooling=mean|last (how embeddings pool; default: the model's config, else last),
 * lora_modules=name=DIR,name=DIR (PEFT LoRA adapters, chosen by a request's `model` or TGI's adapter_id; more at run time
 * with POST /v1/load_lora_adapter, admin key) max_loras=N (resident at once, LRU; default 4) max_lora_rank=R (default 16).
 */
import { deployment } from '@flotilla/core';
import { LLMServer, type LLMServerOptions } from '@flotilla/deployments';
import { checkKvCacheDtype } from '@flotilla/engine';

/** Many streams share one engine (continuous batching), so a replica admits many requests at once. */
@deployment({ maxOngoingRequests: 256, placement: 'thread', healthCheckPeriodS: 5 })
export class LLM extends LLMServer {}

export function llmOptions(args: Record<string, string | undefined>): LLMServerOptions {
  const {
    model,
    tokenizer,
    quantize,
    quantization,
    activations,
    served_name,
    api_keys,
    api_key_file,
    admin_keys,
    metrics_keys,
    max_num_seqs,
    kv_cache_mb,
    kv_cache_dtype,
    speculative_model,
    num_speculative_tokens,
    speculative_method,
    prompt_lookup_max,
    prompt_lookup_min,
    speculative_disable_by_batch_size,
    strict_model_name,
    vllm_metrics,
    pii,
    task,
    pooling,
    lora_modules,
    max_loras,
    max_lora_rank,
    ...rest
  } = args;
  const unknown = Object.keys(rest);
  if (unknown.length > 0)
    throw new Error(`unknown argument ${unknown.join(', ')}; see the header of examples/llm-server.ts`);
  if (quantize !== undefined && quantize !== 'int8' && quantize !== 'int4')
    throw new Error(`quantize must be int8 or int4, got ${quantize}`);
  if (quantization !== undefined && quantization !== 'gptq' && quantization !== 'awq')
    throw new Error(`quantization must be gptq or awq, got ${quantization}`);
  if (kv_cache_dtype !== undefined) checkKvCacheDtype(kv_cache_dtype);
  if (activations !== undefined && activations !== 'int8' && activations !== 'f32')
    throw new Error(`activations must be int8 or f32, got ${activations}`);
  const options: LLMServerOptions = {};
  if (model) options.model = model;
  if (tokenizer) options.tokenizer = tokenizer;
  if (quantize) options.quantize = quantize;
  if (quantization) options.quantization = quantization;
  if (activations) options.activations = activations;
  if (served_name) options.servedModelName = served_name;
  if (api_keys) options.apiKeys = api_keys.split(',').filter(Boolean);
  if (api_key_file) options.apiKeyFile = api_key_file;
  if (admin_keys) options.adminKeys = admin_keys.split(',').filter(Boolean);
  if (metrics_keys) options.metricsKeys = metrics_keys.split(',').filter(Boolean);
  if (max_num_seqs) options.maxNumSeqs = Number(max_num_seqs);
  if (lora_modules) options.loraModules = lora_modules;
  if (max_loras) options.maxLoras = Number(max_loras);
  if (max_lora_rank) options.maxLoraRank = Number(max_lora_rank);
  if (kv_cache_mb) options.kvCacheBytes = Number(kv_cache_mb) * 2 ** 20;
  if (kv_cache_dtype) options.kvCacheDtype = checkKvCacheDtype(kv_cache_dtype);
  if (speculative_method !== undefined && speculative_method !== 'draft' && speculative_method !== 'ngram')
    throw new Error(`speculative_method must be draft or ngram, got ${speculative_method}`);
  if (speculative_model) options.speculativeModel = speculative_model;
  if (speculative_method) options.speculativeMethod = speculative_method;
  if (num_speculative_tokens) options.numSpeculativeTokens = Number(num_speculative_tokens);
  if (prompt_lookup_max) options.promptLookupMax = Number(prompt_lookup_max);
  if (prompt_lookup_min) options.promptLookupMin = Number(prompt_lookup_min);
  if (speculative_disable_by_batch_size)
    options.speculativeDisableByBatchSize = Number(speculative_disable_by_batch_size);
  if (strict_model_name !== undefined) options.strictModelName = flag(strict_model_name, 'strict_model_name');
  if (vllm_metrics !== undefined) options.vllmMetrics = flag(vllm_metrics, 'vllm_metrics');
  if (task !== undefined) {
    if (!['auto', 'generate', 'embed'].includes(task))
      throw new Error(`task must be auto, generate or embed, got ${task}`);
    options.task = task as 'auto' | 'generate' | 'embed';
  }
  if (pooling !== undefined) {
    if (pooling !== 'mean' && pooling !== 'last') throw new Error(`pooling must be mean or last, got ${pooling}`);
    options.pooling = pooling;
  }
  if (pii !== undefined) {
    if (!['redact', 'block', 'log'].includes(pii)) throw new Error(`pii must be redact, block or log, got ${pii}`);
    options.pii = { mode: pii as 'redact' | 'block' | 'log' };
  }
  return options;
}

function flag(v: string, name: string): boolean {
  if (v !== 'true' && v !== 'false') throw new Error(`${name} must be true or false, got ${v}`);
  return v === 'true';
}

export const app = (args: Record<string, string>) => LLM.bind(llmOptions(args));
