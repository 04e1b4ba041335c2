/**
 * @flotilla/deployments: ready-made LLM deployments. LLMServer serves one model over OpenAI- and
 * TGI-compatible HTTP and gRPC (protos/llm.proto), with API keys, rate limits and engine metrics.
 */
export { LLMServer, type LoadedState } from './llm-server.js';
export type { LLMServerOptions, LLMServerLimits, ResolvedLimits } from './llm-server-options.js';
export { resolveLimits, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_N, DEFAULT_MAX_STOP } from './llm-server-options.js';
export { Guard, checkBodySize, type GuardOptions, type RateLimits, type BucketLimit, type Admission } from './guard.js';
export { TokenBucket } from './token-bucket.js';
export { AuditLog, type AuditRecord, type AuditSink } from './audit-log.js';
export { LLMMetrics } from './llm-metrics.js';
export { parseCompletionRequest, parseChatRequest, type OpenAiRequest } from './openai/params.js';
export { parseTgiRequest, type TgiRequest } from './tgi/params.js';
export { prepareGeneration, type GenerationSpec, type PreparedGeneration, type PromptSource } from './generation.js';
export { LLM_PROTO_PATH, LLM_GRPC_SERVICE, type GrpcGenerateRequest } from './grpc/llm-grpc.js';
export { RANDOM_MODEL_CONFIG } from './model-source.js';
export type { ModelInfo } from './handler-context.js';
export * from './errors.js';
