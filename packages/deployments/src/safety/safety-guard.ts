/**
 * SafetyGuard: content safety as a stage of a generation graph. Prompts and generated text (streamed,
 * judged in windows; safety-policy.ts) go to a classifier deployment — any deployment with a method
 * `classify(text) → { score, label? }` where score is the probability the text is unsafe: LlmJudge
 * (a small model asked for a label, llm-judge.ts) or a user's own — and are refused, cut or redacted
 * at or above a threshold. Served over the same OpenAI/TGI HTTP API, gRPC llm.proto and handles as what
 * it guards (guards/guard-stage.ts):
 *
 *   @deployment() class Safety extends SafetyGuard {}
 *   export const app = Safety.bind(Model.bind({ model }), Judge.bind({ model: small }), { threshold: 0.8 });
 *
 * Metrics: `flotilla_safety_decisions_total{where, decision}` and the classifier's latency,
 * `flotilla_safety_classifier_seconds{where}` — neither carries any text.
 */
import type { DeploymentHandle } from '@flotilla/core';
import { Counter, Histogram, Registry } from 'prom-client';
import { GuardStage, type GuardStageOptions } from '../guards/guard-stage.js';
import type { OutputFilter } from '../guards/output-filter.js';
import { ContentBlockedError } from './safety-errors.js';
import {
  type Classify,
  type DecisionHook,
  judge,
  type ResolvedSafetyPolicy,
  resolveSafetyPolicy,
  SafetyOutputFilter,
  type SafetyPolicyOptions,
  type SafetyVerdict,
} from './safety-policy.js';

export interface SafetyGuardOptions extends SafetyPolicyOptions, GuardStageOptions {
  /** The classifier's method. Default 'classify'. */
  classifierMethod?: string;
}

export class SafetyGuard extends GuardStage {
  readonly #registry = new Registry();
  readonly #policy: ResolvedSafetyPolicy;
  readonly #classify: Classify;
  readonly #onDecision: DecisionHook;

  constructor(downstream: DeploymentHandle, classifier: DeploymentHandle, options: SafetyGuardOptions = {}) {
    super(downstream, options);
    this.#policy = resolveSafetyPolicy(options);
    const method = options.classifierMethod ?? 'classify';
    this.#classify = (text) => classifier.remote(method, [text]) as Promise<SafetyVerdict>;
    const decisions = new Counter({
      name: 'flotilla_safety_decisions_total',
      help: 'Content-safety decisions, by place (prompt or output) and decision (allow, block, redact, flag).',
      labelNames: ['where', 'decision'],
      registers: [this.#registry],
    });
    const latency = new Histogram({
      name: 'flotilla_safety_classifier_seconds',
      help: 'Time the content classifier took per judgement, by place.',
      labelNames: ['where'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.#registry],
    });
    this.#onDecision = (where, decision, seconds) => {
      decisions.inc({ where, decision });
      latency.observe({ where }, seconds);
    };
  }

  protected async checkPrompt(text: string, param: string): Promise<string> {
    if (!this.#policy.prompts) return text;
    const { decision, score } = await judge(this.#policy, this.#classify, text, 'prompt', this.#onDecision);
    if (decision === 'block') throw new ContentBlockedError(score, param);
    return text;
  }

  protected outputFilter(): OutputFilter | null {
    return this.#policy.outputs ? new SafetyOutputFilter(this.#policy, this.#classify, this.#onDecision) : null;
  }

  async collectMetrics(): Promise<unknown[]> {
    return this.#registry.getMetricsAsJSON();
  }
}
