/**
 * GenerationBackend over LLMServer's own engine: prepare is preparePrompt (limits, the engine's prepare(),
 * long prompts tokenized off the event loop), start is startGeneration. The routes see the same interface
 * whether they run inside LLMServer or in LLMFront over a graph (graph-backend.ts).
 */
import type { LLMEngine } from '@flotilla/engine';
import { startGeneration } from './generation.js';
import type { GenerationBackend } from './handler-context.js';
import type { ResolvedLimits } from './llm-server-options.js';
import type { PromptEncoder } from './off-loop-tokenizer.js';
import { preparePrompt } from './prepare-prompt.js';

export function engineBackend(
  engine: LLMEngine,
  encoder: PromptEncoder,
  limits: ResolvedLimits,
  request: { requestId: string; signal: AbortSignal | undefined },
): GenerationBackend {
  const ctx = { engine, encoder, limits };
  return {
    maxModelLen: engine.maxModelLen,
    maxConcurrentRequests: engine.scheduler.maxNumSeqs,
    tokens: engine.tokenizer,
    prepare: (spec) => preparePrompt(ctx, spec),
    start: (prepared, names) =>
      startGeneration(engine, prepared, names, {
        requestId: request.requestId,
        ...(request.signal ? { signal: request.signal } : {}),
      }),
  };
}
