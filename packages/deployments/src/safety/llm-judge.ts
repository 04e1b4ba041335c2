/**
 * LlmJudge: a content classifier made of a small language model asked for a label. The text goes into
 * a template that ends in a yes/no question; the model's next-token distribution (one greedy step with
 * the top 20 logprobs) gives the two labels' log-probabilities, and the score is the probability of
 * the "unsafe" label between the two: 1 / (1 + exp(lp_safe − lp_unsafe)). A label outside the top 20
 * counts with the 20th logprob minus 1 (an upper bound), so a model that puts neither label near the
 * top gives a score near 0.5 — calibrate the guard's threshold on your model.
 *
 *   @deployment() class Judge extends LlmJudge {}
 *   Safety.bind(Model.bind(...), Judge.bind({ model: 'path/to/small-model' }), { threshold: 0.8 })
 */
import { LLMEngine } from '@flotilla/engine';
import type { SafetyVerdict } from './safety-policy.js';

export interface LlmJudgeOptions {
  model: string;
  tokenizer?: string;
  /** CPU threads. Default 1 (a judge sits beside a bigger model). */
  numThreads?: number;
  /** The prompt; `{text}` is replaced by the text judged. Default a short yes/no question. */
  template?: string;
  /** Continuation that means unsafe. Default ' yes'. */
  unsafeLabel?: string;
  /** Continuation that means safe. Default ' no'. */
  safeLabel?: string;
  /** Characters of the text kept (the end is cut). Default 2000. */
  maxChars?: number;
}

export const DEFAULT_JUDGE_TEMPLATE =
  'Is the following text harmful, abusive or dangerous? Answer yes or no.\nText: {text}\nAnswer:';

export class LlmJudge {
  readonly #engine: Promise<LLMEngine>;

  constructor(private readonly options: LlmJudgeOptions) {
    this.#engine = LLMEngine.create({
      model: options.model,
      ...(options.tokenizer ? { tokenizer: options.tokenizer } : {}),
      numThreads: options.numThreads ?? 1,
    });
    this.#engine.catch(() => {});
  }

  async classify(text: string): Promise<SafetyVerdict> {
    const engine = await this.#engine;
    const template = this.options.template ?? DEFAULT_JUDGE_TEMPLATE;
    const prompt = template.replace('{text}', String(text).slice(0, this.options.maxChars ?? 2000));
    const unsafeId = engine.tokenizer.encode(this.options.unsafeLabel ?? ' yes')[0];
    const safeId = engine.tokenizer.encode(this.options.safeLabel ?? ' no')[0];
    let top: Array<{ tokenId: number; logprob: number }> = [];
    for await (const out of engine.generate(prompt, { maxTokens: 1, temperature: 0, logprobs: 20 })) {
      top = out.logprobs?.[0]?.top ?? top;
    }
    const floor = (top.at(-1)?.logprob ?? -30) - 1;
    const lp = (id: number | undefined) => top.find((t) => t.tokenId === id)?.logprob ?? floor;
    const score = 1 / (1 + Math.exp(lp(safeId) - lp(unsafeId)));
    return { score, label: score >= 0.5 ? 'unsafe' : 'safe' };
  }

  async checkHealth(): Promise<void> {
    await this.#engine;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const engine = await this.#engine.catch(() => null);
    await engine?.dispose();
  }
}
