/**
 * Tokens/s of one engine under per-request speculation settings (off, draft k, n-gram k), so every
 * configuration of a section runs on the same loaded models; acceptance figures per configuration
 * are the difference of the engine's counters around its runs.
 */
import type { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import type { LoadedModel } from '../../packages/engine/src/model-loader/load-model.js';
import type { NativeModel } from '../../packages/engine/src/native/native-types.js';
import type { SamplingParams, SpeculativeParams } from '../../packages/engine/src/sampling-params.js';
import type { SpecDecodeStats } from '../../packages/engine/src/spec-decode/spec-metrics.js';

export interface Config {
  name: string;
  /** false = plain decoding. */
  speculative: SpeculativeParams | false;
  /**
   * Run on a twin engine whose models hide the fused native calls (draft(), argmax()): one step()
   * per draft token and logits() for verification, as before they existed, for a same-run comparison.
   */
  perStep?: boolean;
  /** Run on a twin engine whose models hide verify() only: verification in TypeScript from logits() rows, as before it existed. */
  tsVerify?: boolean;
  /** Sample at this temperature (each prompt with a seed of its own, the same in every configuration). Default 0: greedy. */
  temperature?: number;
  /** The configuration whose outputs this one's must equal (the 'exact' column); null: none. Default 'plain'. */
  sameAs?: string | null;
}

export interface Acceptance {
  drafts: number;
  draftTokens: number;
  acceptedTokens: number;
  judged: number;
}

export interface Run {
  tokensPerS: number;
  /** Tokens per second of this process's CPU time (all threads): the rate on a core of its own, steadier than wall time on a shared machine. */
  tokensPerCpuS: number;
  outputs: number[][];
  acceptance: Acceptance;
}

function counters(s: SpecDecodeStats | undefined): Acceptance {
  if (!s) return { drafts: 0, draftTokens: 0, acceptedTokens: 0, judged: 0 };
  return {
    drafts: s.drafts,
    draftTokens: s.draftTokens,
    acceptedTokens: s.acceptedTokens,
    judged: s.triedByPosition.reduce((a, b) => a + b, 0),
  };
}

export function addAcceptance(a: Acceptance, b: Acceptance): Acceptance {
  return {
    drafts: a.drafts + b.drafts,
    draftTokens: a.draftTokens + b.draftTokens,
    acceptedTokens: a.acceptedTokens + b.acceptedTokens,
    judged: a.judged + b.judged,
  };
}

/** Generation of `maxTokens` per prompt (greedy unless config.temperature): one after another (streams 1) or all at once. */
export async function measure(
  engine: LLMEngine,
  config: Config,
  prompts: readonly string[],
  maxTokens: number,
  streams: number,
): Promise<Run> {
  const temperature = config.temperature ?? 0;
  const drain = async (p: string, i: number) => {
    const params: SamplingParams = {
      temperature,
      maxTokens,
      ignoreEos: true,
      speculative: config.speculative,
      ...(temperature > 0 ? { seed: 1000 + i } : {}),
    };
    const ids: number[] = [];
    for await (const o of engine.generate(p, params)) ids.push(...o.tokenIds);
    return ids;
  };
  const before = counters(engine.stats().speculative);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let outputs: number[][];
  if (streams === 1) {
    outputs = [];
    for (const [i, p] of prompts.entries()) outputs.push(await drain(p, i));
  } else {
    outputs = await Promise.all(prompts.map(drain));
  }
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  const after = counters(engine.stats().speculative);
  const acceptance = {
    drafts: after.drafts - before.drafts,
    draftTokens: after.draftTokens - before.draftTokens,
    acceptedTokens: after.acceptedTokens - before.acceptedTokens,
    judged: after.judged - before.judged,
  };
  const tokens = outputs.reduce((a, o) => a + o.length, 0);
  return { tokensPerS: tokens / s, tokensPerCpuS: tokens / cpuS, outputs, acceptance };
}

/** The same native model without its fused calls (draft(), argmax(), verify()); callers fall back to step() and logits(). */
export function withoutFusedCalls(loaded: LoadedModel): LoadedModel {
  const m = loaded.model;
  const model: NativeModel = {
    config: m.config,
    blockSize: m.blockSize,
    numBlocks: m.numBlocks,
    kvDtype: m.kvDtype,
    backend: m.backend,
    kernels: m.kernels,
    weightBytes: m.weightBytes,
    numThreads: m.numThreads,
    step: (b) => m.step(b),
    logits: (b, r) => m.logits(b, r),
    dispose: () => {},
  };
  return {
    spec: loaded.spec,
    model,
    tokenizer: loaded.tokenizer,
    dispose: () => {},
    [Symbol.asyncDispose]: async () => {},
  };
}

/** The same native model without verify(): speculative steps verify in TypeScript from logits() rows. */
export function withoutVerify(loaded: LoadedModel): LoadedModel {
  const m = loaded.model;
  const model: NativeModel = {
    config: m.config,
    blockSize: m.blockSize,
    numBlocks: m.numBlocks,
    kvDtype: m.kvDtype,
    backend: m.backend,
    kernels: m.kernels,
    weightBytes: m.weightBytes,
    numThreads: m.numThreads,
    step: (b, out) => m.step(b, out),
    logits: (b, r) => m.logits(b, r),
    ...(m.argmax ? { argmax: m.argmax.bind(m) } : {}),
    ...(m.draft ? { draft: m.draft.bind(m) } : {}),
    dispose: () => {},
  };
  return {
    spec: loaded.spec,
    model,
    tokenizer: loaded.tokenizer,
    dispose: () => {},
    [Symbol.asyncDispose]: async () => {},
  };
}
