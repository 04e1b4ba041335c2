/**
 * What `LLMServer.bind({...})` takes. Plain data (it crosses to the replica), every field optional.
 */
import type { RateLimits } from './guard.js';
import type { PiiOptions } from './pii/pii-filter.js';

export interface LLMServerLimits {
  /** Largest request body in bytes; larger ones get 413. Default 1 MiB (1048576). */
  maxBodyBytes?: number;
  /** Longest prompt in tokens (after the chat template); longer ones get 400. Default: the model's context minus 1. */
  maxPromptTokens?: number;
  /**
   * Longest prompt in UTF-8 bytes (text, or chat messages' content), checked before tokenizing so that a huge
   * prompt costs no tokenizer time; longer ones get 400 (context_length_exceeded). Default: maxPromptTokens × 16,
   * more than any prompt that fits can have with SentencePiece-style vocabularies (no token of theirs spans more
   * than 16 bytes); raise it for a vocabulary whose tokens are longer.
   */
  maxPromptBytes?: number;
  /** Largest max_tokens (max_new_tokens) a request may ask for. Default: the model's context. */
  maxTokens?: number;
  /** Largest n (samples per request). Default 8. */
  maxN?: number;
  /** Most stop strings per request. Default 8. */
  maxStop?: number;
}

export interface LLMServerOptions {
  /**
   * Personal data in prompts and outputs (pii/): e-mail addresses, phone numbers, payment cards (Luhn),
   * IBANs, US SSNs, IP addresses — redacted, refused (400 `pii_blocked` naming the kinds) or only
   * counted, on every route (OpenAI, TGI, gRPC) after the key check; streamed outputs are scanned across
   * chunk boundaries. Counts in `flotilla_pii_detections_total`; values never logged. Default: off.
   */
  pii?: PiiOptions;
  /** Model path (llama2.c .bin, GGUF file or Hugging Face directory). Default: a small random-weight model, said so at start and in /v1/models. */
  model?: string;
  /** Tokenizer path overriding the one found beside the model. Default: found beside the model. */
  tokenizer?: string;
  /** Quantize weights at load. Default: none (the file's own weight type). */
  quantize?: 'int8' | 'int4';
  /**
   * A pre-quantized Hugging Face checkpoint's method, as vLLM's `quantization` names it: 'gptq' or 'awq'.
   * The checkpoint's quantization_config must say the same (it is detected without this option).
   * bitsandbytes and other methods are refused with the list of what is read. Default: from config.json.
   */
  quantization?: 'gptq' | 'awq';
  /**
   * What quantized weights (quantize, GPTQ/AWQ) multiply on the CPU: 'int8' activations (fastest) or
   * 'f32' (the dequantized model's logits up to float rounding; NativeLoadOptions.activations). Default 'int8'.
   */
  activations?: 'int8' | 'f32';
  /** Name clients pass as `model` and see in /v1/models. Default: the model file or directory name ('random-weights' without a model). */
  servedModelName?: string;
  /**
   * Refuse a request whose `model` is not servedModelName with 404 model_not_found, as vLLM does. Default
   * false: this server serves one model, so any name is taken as it, as on a TGI endpoint (Hugging Face's
   * clients send the endpoint URL or 'tgi'); answers carry servedModelName, /v1/models lists only it.
   */
  strictModelName?: boolean;
  /**
   * LoRA adapters loaded at start-up (vLLM's --lora-modules): 'name=path,name=path' or { name: path }, each a
   * PEFT directory; a request's `model` (or TGI's adapter_id) naming one runs on it. Default none.
   */
  loraModules?: string | Record<string, string>;
  /** Adapters resident at once (vLLM's max_loras); more are swapped in LRU. Default: 4 with loraModules, else 0 (none). */
  maxLoras?: number;
  /** Largest adapter rank (vLLM's max_lora_rank). Default 16. */
  maxLoraRank?: number;
  /**
   * Draft model for speculative decoding inside the engine (vLLM's speculative_model): a path (same kinds as
   * `model`) sharing the model's vocabulary. Default: none.
   */
  speculativeModel?: string;
  /**
   * Proposed tokens per step (vLLM's num_speculative_tokens); giving it (or speculativeModel) turns
   * speculation on. Default 4 when speculation is on.
   */
  numSpeculativeTokens?: number;
  /**
   * How tokens are proposed (vLLM's speculative method): 'draft' (speculativeModel) or 'ngram' (prompt lookup,
   * no second model). Default 'draft' with speculativeModel, else 'ngram'.
   */
  speculativeMethod?: 'draft' | 'ngram';
  /** N-gram lookup: longest suffix matched (vLLM's prompt_lookup_max). Default 4. */
  promptLookupMax?: number;
  /** N-gram lookup: shortest suffix matched (vLLM's prompt_lookup_min). Default 1. */
  promptLookupMin?: number;
  /**
   * Steps running more than this many decodes do not speculate (vLLM's speculative_disable_by_batch_size): a
   * batch already reads each weight once for many tokens, and proposals then cost more than they save.
   * Default: never disabled.
   */
  speculativeDisableByBatchSize?: number;
  /** Also expose the engine's metrics under vLLM's names (`vllm:...`, see vllm-metrics.ts). Default true. */
  vllmMetrics?: boolean;
  /** Bytes for the KV pool. Default: the engine's (256 MiB). */
  kvCacheBytes?: number;
  /**
   * Element type of the KV pool (vLLM's kv_cache_dtype): 'f16' halves its memory and what attention
   * reads at long contexts; 'int8' (CPU) / 'fp8' (CUDA) about halves it again (one byte per element
   * and a scale per token and head). Default 'auto': f16 for a model held in f16, f32 otherwise.
   */
  kvCacheDtype?: 'auto' | 'f32' | 'f16' | 'int8' | 'fp8' | 'fp8_e4m3';
  /** Most sequences running at once. Default: the engine's (256). */
  maxNumSeqs?: number;
  /** Most tokens in one engine step. Default: the engine's (2048). */
  maxNumBatchedTokens?: number;
  /** Longest prompt + output. Default: the model's maxSeqLen. */
  maxModelLen?: number;
  /** Reuse KV blocks across requests sharing a prefix. Default true. */
  enablePrefixCaching?: boolean;
  /** Native CPU threads. Default: the engine's (all cores). */
  numThreads?: number;
  /** Where the model runs. Default 'auto'. */
  device?: 'auto' | 'cpu' | 'cuda';
  /** Jinja chat template overriding the model's. Default: the model's, else a plain "Role: content" template. */
  chatTemplate?: string;
  /**
   * What the server is for (vLLM's --task): 'generate' serves the generation routes only, 'embed' serves
   * /v1/embeddings (and gRPC Embed) only — generation routes answer 400 unsupported_task — and 'auto' both.
   * Default 'auto'.
   */
  task?: 'auto' | 'generate' | 'embed';
  /** How embeddings pool the final hidden states. Default: the model's pooling config, else 'last'. */
  pooling?: 'mean' | 'last';
  /** Accepted API keys (Authorization: Bearer KEY). Default: none (no authentication) unless apiKeyFile is set. */
  apiKeys?: string[];
  /** File with one API key per line ('#' comments allowed), read at start. Default: none. */
  apiKeyFile?: string;
  /**
   * Keys that may do everything: the APIs, the proxy's monitoring routes and POST /-/shutdown (`serve run`
   * gives them to the proxies, see LLMServer.ingressKeys), and the only keys shown the model's file path
   * (/v1/models `root`, /info `model_path`). Default: none.
   */
  adminKeys?: string[];
  /** Keys that may read the proxy's monitoring routes only (/metrics, /-/status, ...; given to the proxies by `serve run`). Default: none. */
  metricsKeys?: string[];
  /**
   * Per-key token buckets on requests and on tokens, kept in each replica: exact with one replica, up to
   * numReplicas times the limit with more. For several replicas give a RateLimiter deployment instead (the
   * second argument of LLMServer, see rate-limiter.ts). Default: none (unlimited).
   */
  rateLimits?: RateLimits;
  /** Request size limits. Default: see LLMServerLimits. */
  limits?: LLMServerLimits;
  /** Put the prompt text into the audit log lines. Default false (never logged). */
  logPrompts?: boolean;
  /** Where audit lines go (one JSON object per line). Default 'stderr'; 'none' turns them off. */
  auditLog?: 'stderr' | 'stdout' | 'none';
}

export interface ResolvedLimits {
  maxBodyBytes: number;
  maxPromptTokens: number;
  maxPromptBytes: number;
  maxTokens: number;
  maxN: number;
  maxStop: number;
}

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
export const DEFAULT_MAX_N = 8;
export const DEFAULT_MAX_STOP = 8;
/** Bytes per prompt token allowed by the default maxPromptBytes (see LLMServerLimits.maxPromptBytes). */
export const PROMPT_BYTES_PER_TOKEN = 16;

/** Fills the limits once the model's context length is known. */
export function resolveLimits(limits: LLMServerLimits | undefined, maxModelLen: number): ResolvedLimits {
  const maxPromptTokens = Math.min(limits?.maxPromptTokens ?? maxModelLen - 1, maxModelLen - 1);
  return {
    maxBodyBytes: limits?.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    maxPromptTokens,
    maxPromptBytes: limits?.maxPromptBytes ?? maxPromptTokens * PROMPT_BYTES_PER_TOKEN,
    maxTokens: Math.min(limits?.maxTokens ?? maxModelLen, maxModelLen),
    maxN: limits?.maxN ?? DEFAULT_MAX_N,
    maxStop: limits?.maxStop ?? DEFAULT_MAX_STOP,
  };
}
