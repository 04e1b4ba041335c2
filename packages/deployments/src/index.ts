/**
 * @flotilla/deployments: ready-made LLM deployments. LLMServer serves one model over OpenAI- and
 * TGI-compatible HTTP and gRPC (protos/llm.proto), with API keys, rate limits and engine metrics.
 */
export { LLMServer, type LoadedState } from './llm-server.js';
export { MultiLoraServer, requestModelId } from './lora-multiplex.js';
export {
  MultiModelServer,
  catalogueModelId,
  type CatalogueModel,
  type MultiModelServerOptions,
} from './multi-model-server.js';
export { llmRoutingKey, ROUTING_KEY_CHARS } from './llm-routing-key.js';
export type { LLMServerOptions, LLMServerLimits, ResolvedLimits } from './llm-server-options.js';
export { resolveLimits, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_N, DEFAULT_MAX_STOP } from './llm-server-options.js';
export {
  Guard,
  KeyBuckets,
  checkBodySize,
  type GuardOptions,
  type RateLimits,
  type BucketLimit,
  type Admission,
  type RateDecision,
} from './guard.js';
export { RateLimiter } from './rate-limiter.js';
export { TokenBucket } from './token-bucket.js';
export { AuditLog, type AuditRecord, type AuditSink } from './audit-log.js';
export { LLMMetrics } from './llm-metrics.js';
export { VllmMetrics, VLLM_METRIC_NAMES } from './vllm-metrics.js';
export { engineSpeculation, DEFAULT_NUM_SPECULATIVE_TOKENS } from './engine-speculation.js';
export { parseCompletionRequest, parseChatRequest, type OpenAiRequest } from './openai/params.js';
export { parseTgiRequest, type TgiRequest } from './tgi/params.js';
export { prepareGeneration, type GenerationSpec, type PreparedGeneration, type PromptSource } from './generation.js';
export { LLM_PROTO_PATH, LLM_GRPC_SERVICE, type GrpcGenerateRequest } from './grpc/llm-grpc.js';
export { RANDOM_MODEL_CONFIG } from './model-source.js';
export type { ModelInfo } from './handler-context.js';
export * from './errors.js';
export { DraftModel, type DraftProposalWire } from './draft-model.js';
export { TargetModel, type TargetInfo, type VerifyWire } from './target-model.js';
export {
  SpeculativePipeline,
  keepUntilStop,
  type SpeculativePipelineOptions,
  type SpeculativeRequest,
  type SpeculativeChunk,
} from './speculative.js';
export type { SpecModelOptions, SpecCall, RoundTiming } from './spec-session.js';
export {
  CircuitBreaker,
  backoffDelayMs,
  type BreakerState,
  type CircuitBreakerOptions,
  type BackoffOptions,
} from './circuit-breaker.js';
export {
  ResponseCache,
  LruTtlCache,
  cacheKey,
  canonicalJson,
  credentialScope,
  isDeterministic,
  type ResponseCacheOptions,
  type LruTtlOptions,
} from './response-cache.js';
export {
  HybridRouter,
  HybridUnavailableError,
  heuristicChoice,
  promptText,
  estimatedCost,
  estimatedTokens,
  reportedTokens,
  DEFAULT_COST_PER_1K_TOKENS,
  type HybridRouterOptions,
  type HeuristicOptions,
  type ModelChoice,
} from './hybrid-router.js';
export { PiiGuard, type PiiGuardOptions } from './pii/pii-guard.js';
export { PiiFilter, redactMatches, type PiiOptions, type PiiMode, type PiiCounts } from './pii/pii-filter.js';
export { StreamRedactor, HOLD_CHARS } from './pii/stream-redactor.js';
export { PiiBlockedError } from './pii/pii-errors.js';
export { findPii, PII_KINDS, type PiiKind, type PiiMatch } from './pii/recognizers.js';
export { GuardStage, type GuardStageOptions } from './guards/guard-stage.js';
export type { OutputFilter } from './guards/output-filter.js';
export { SafetyGuard, type SafetyGuardOptions } from './safety/safety-guard.js';
export { LlmJudge, DEFAULT_JUDGE_TEMPLATE, type LlmJudgeOptions } from './safety/llm-judge.js';
export { ContentBlockedError } from './safety/safety-errors.js';
export type { SafetyVerdict, SafetyPolicyOptions, SafetyMode } from './safety/safety-policy.js';
export { COST_HEADER, formatUsd, requestCostUsd } from './request-cost.js';
export { LLMFront, type LLMFrontOptions } from './llm-front.js';
export { FrontServer, type FrontServerOptions } from './front-server.js';
export { handleClient, localClient, type GraphClient } from './graph-client.js';
export { RequestGate, type GateOptions } from './request-gate.js';
export {
  GRAPH_METHODS,
  type GenerationGraph,
  type GraphDelta,
  type GraphInfo,
  type GraphPrepared,
  type GraphPrompt,
  type GraphRequest,
  type GraphToken,
} from './graph.js';
export { engineDeltas, graphPrepared, graphSpec, tokenInfo } from './graph-deltas.js';
export { PrefillServer } from './pd/prefill-server.js';
export { DecodeServer } from './pd/decode-server.js';
export { PdRouter, transferFailure, type PdRouterOptions, type PdRouteRequest } from './pd/pd-router.js';
export { DecodeChoice, type KvReport, type DecodeChoiceOptions } from './pd/decode-choice.js';
export type { PdRequest, PdDelta, PrefillHandoff, DecodeItem } from './pd/pd-wire.js';
