/**
 * Loading one served model the way LLMServer does: the model source (a path or the random-weight
 * model), LLMEngine.create with the server's engine options, the start-up LoRA adapters, the served
 * name, the metrics registry observing the engine, the off-loop tokenizer and the resolved limits.
 * LLMServer loads one at construction; MultiModelServer (multi-model-server.ts) one per catalogue entry
 * on a replica's first request naming it, with the same options but its own model path and name.
 */
import { modelLoadProgress } from '@flotilla/core';
import { type EngineSpeculativeOptions, LLMEngine } from '@flotilla/engine';
import { speculationBanner } from './engine-speculation.js';
import type { ModelInfo } from './handler-context.js';
import { LLMMetrics } from './llm-metrics.js';
import { resolveLimits, type LLMServerOptions, type ResolvedLimits } from './llm-server-options.js';
import { randomWeightsBanner, resolveModelSource } from './model-source.js';
import { OffLoopTokenizer } from './off-loop-tokenizer.js';
import { loadLoraModules, loraEngineOptions, type LoraModule } from './openai/lora-routes.js';

/** What a loaded server holds; absent while loading. */
export interface LoadedState {
  engine: LLMEngine;
  model: ModelInfo;
  limits: ResolvedLimits;
  /** The engine's tokenizer, with long texts encoded off the event loop. */
  encoder: OffLoopTokenizer;
}

/** A loaded model and the metrics registry observing its engine (detach it before disposing the engine). */
export interface ServedModel {
  state: LoadedState;
  metrics: LLMMetrics;
}

/**
 * Loads `o.model` (served as `o.servedModelName`, else its file name) with the engine options of `o`,
 * then `adapters` into it. A failure after the engine was created frees the engine before it is thrown.
 */
export async function loadServedModel(
  o: LLMServerOptions,
  adapters: LoraModule[],
  speculative: EngineSpeculativeOptions | undefined,
): Promise<ServedModel> {
  const source = await resolveModelSource(o.model, o.tokenizer);
  if (source.randomWeights) process.stderr.write(randomWeightsBanner(source));
  const engine = await LLMEngine.create({
    model: source.path,
    ...(source.tokenizer !== undefined ? { tokenizerPath: source.tokenizer } : {}),
    ...(o.quantize ? { weightFormat: o.quantize } : {}),
    ...(o.quantization ? { quantization: o.quantization } : {}),
    ...(o.kvCacheDtype ? { kvDtype: o.kvCacheDtype } : {}),
    ...(speculative ? { speculative } : {}),
    // A bar on a terminal, a few plain lines otherwise: loading (and quantizing) a big model takes a while.
    onProgress: modelLoadProgress(o.quantize ? `${source.defaultName} (${o.quantize})` : source.defaultName),
    ...pick(o, [
      'kvCacheBytes',
      'activations',
      'maxNumSeqs',
      'maxNumBatchedTokens',
      'maxModelLen',
      'enablePrefixCaching',
      'numThreads',
      'device',
      'chatTemplate',
      'pooling',
    ]),
    ...loraEngineOptions(o),
  });
  try {
    await loadLoraModules(engine, adapters);
  } catch (err) {
    await engine.dispose();
    throw err;
  }
  if (speculative) process.stderr.write(speculationBanner(speculative));
  const model: ModelInfo = {
    name: o.servedModelName ?? source.defaultName,
    path: source.path,
    randomWeights: source.randomWeights,
    createdS: Math.floor(Date.now() / 1000),
    strictName: o.strictModelName === true,
  };
  const metrics = new LLMMetrics(model.name, {
    vllm: o.vllmMetrics ?? true,
    maxModelLen: engine.maxModelLen,
    ...(speculative ? { numSpeculativeTokens: speculative.k } : {}),
    ...(engine.adapters ? { maxLoras: engine.adapters.maxLoras } : {}),
  });
  metrics.attach(engine);
  const encoder = new OffLoopTokenizer(engine.tokenizer, { model: source.path, tokenizer: source.tokenizer });
  return { state: { engine, model, limits: resolveLimits(o.limits, engine.maxModelLen), encoder }, metrics };
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
