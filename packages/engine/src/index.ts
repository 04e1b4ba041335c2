/**
 * @flotilla/engine: the policy half of the inference engine (scheduler, paged KV blocks, prefix
 * caching, streaming) over the native addon, plus model readers and tokenizers.
 */
export {
  LLMEngine,
  type LLMEngineOptions,
  type GenerateOptions,
  type PrepareOptions,
  type EmbedOptions,
} from './llm-engine.js';
export { EmbeddingQueue, poolingOf, type EmbeddingOutput, type PoolingType, type EmbedModel } from './embeddings.js';
export { PreparedRequest } from './prepared-request.js';
export type { EngineEvent, EngineEventListener, EngineStats } from './engine-metrics.js';
export { RequestStream, type RequestOutput, type TokenLogprob } from './request-output.js';
export type { PromptInput, TokenizedPrompt } from './prompt.js';
export { tokenizePrompt } from './prompt.js';
export {
  resolveSamplingParams,
  checkSamplingParams,
  MAX_LOGPROBS,
  MAX_SPECULATIVE_K,
  type SamplingParams,
  type ResolvedSamplingParams,
  type SamplingContext,
} from './sampling-params.js';
export {
  ChatTemplate,
  DEFAULT_CHAT_TEMPLATE,
  defaultToolPrompt,
  type ChatMessage,
  type ToolCall,
  type ToolDefinition,
  type ChatTemplateOptions,
  type RenderOptions,
} from './chat-template.js';
export { Sequence, checkTokenStop, type SequenceStatus, type FinishReason, type SequenceInit } from './sequence.js';
export {
  Scheduler,
  DEFAULT_MAX_NUM_BATCHED_TOKENS,
  DEFAULT_MAX_NUM_SEQS,
  type SchedulerConfig,
  type SchedulerOutput,
  type StepOutcome,
} from './scheduler.js';
export { BlockPool } from './block-pool.js';
export { BlockManager, hashBlock, type BlockManagerStats } from './block-manager.js';
export { ModelRunner, type ModelRunnerOptions, type StepModel } from './model-runner.js';
export { IncrementalDetokenizer, type DetokenizerTokenizer } from './detokenizer.js';
export { StopChecker } from './stop-checker.js';
export * from './errors.js';
export * from './model-loader/index.js';
export * from './tokenizer/index.js';
export type * from './native/native-types.js';
export * from './sample/index.js';
export * from './spec-decode/index.js';
export type { LLMEngineStats } from './llm-engine.js';
export type { SpeculativeParams } from './sampling-params.js';
export { checkGuidedSpec, type GuidedSpec } from './guided/guided-spec.js';
export { GrammarCheckerBusyError } from './guided/grammar-checker.js';
export * from './kv-transfer/kv-errors.js';
export {
  readKvHeader,
  checkKvHeader,
  kvPayloadBytes,
  KV_HEADER_BYTES,
  type KvPayloadHeader,
  type KvPoolShape,
} from './kv-transfer/kv-payload.js';
export type { KvHandoff, PrefillOptions, HandoffOptions } from './kv-transfer/kv-handoff.js';
