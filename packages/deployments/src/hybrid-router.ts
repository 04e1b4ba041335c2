/**
 * HybridRouter: sends each generate request to a small or a large model deployment. The choice comes
 * from `classify()` — by default a cheap heuristic over prompt length and content; with
 * `classifier: 'confidence'`, the small model's own confidence (mean logprob of its first greedy
 * tokens); subclasses override classify() for anything else. Each decision and its estimated cost
 * are counted in the replica's prom-client registry (collectMetrics(), as LLMServer). When a model
 * fails, calls are retried with exponential backoff and then go to the other model; a circuit
 * breaker per model stops sending to one that keeps failing until a probe succeeds.
 *
 * ```ts
 * @deployment() class Router extends HybridRouter {}
 * export const app = Router.bind(Small.bind({ model: s }), Large.bind({ model: l }), { classifier: 'heuristic' });
 * ```
 */
import { type DeploymentHandle, registerErrorClasses } from '@flotilla/core';
import { Counter, Registry } from 'prom-client';
import { backoffDelayMs, CircuitBreaker, type BackoffOptions, type CircuitBreakerOptions } from './circuit-breaker.js';

export type ModelChoice = 'small' | 'large';

export interface HeuristicOptions {
  /** Prompts longer than this (characters) go to the large model. Default 600. */
  maxSmallChars?: number;
  /** Words that mark a hard request (reasoning, code, math), case-insensitive. Default a short English list. */
  hardWords?: string[];
}

export interface HybridRouterOptions {
  /** 'heuristic' (prompt length and content) or 'confidence' (the small model's mean logprob). Default 'heuristic'. */
  classifier?: 'heuristic' | 'confidence';
  heuristic?: HeuristicOptions;
  /** Small model's mean logprob over its first `probeTokens` greedy tokens at or above which it answers. Default -1.5. */
  confidenceThreshold?: number;
  /** Tokens the confidence probe generates. Default 4. */
  probeTokens?: number;
  /** Relative cost per 1000 tokens (prompt estimate + max_tokens) of each model. Default { small: 1, large: 10 }. */
  costPer1kTokens?: Record<ModelChoice, number>;
  /** Retries per model before falling back. Default 2. */
  retries?: number;
  backoff?: BackoffOptions;
  breaker?: Omit<CircuitBreakerOptions, 'now'>;
  /** Downstream method called with the request. Default 'grpcGenerate' (LLMServer's). */
  method?: string;
}

/** No model could answer: both failed or both circuits are open. */
export class HybridUnavailableError extends Error {
  readonly code = 'E_HYBRID_UNAVAILABLE';
  constructor(
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'HybridUnavailableError';
  }
}
registerErrorClasses({ HybridUnavailableError });

const DEFAULT_HARD_WORDS = [
  'explain',
  'why',
  'prove',
  'step by step',
  'code',
  'function',
  'analyze',
  'analyse',
  'compare',
  'calculate',
  'translate',
];

/** The default classifier: long prompts or hard-sounding ones go to the large model. Pure. */
export function heuristicChoice(prompt: string, opts: HeuristicOptions = {}): ModelChoice {
  if (prompt.length > (opts.maxSmallChars ?? 600)) return 'large';
  const lower = prompt.toLowerCase();
  return (opts.hardWords ?? DEFAULT_HARD_WORDS).some((w) => lower.includes(w.toLowerCase())) ? 'large' : 'small';
}

/** The prompt text of a request (prompt, or the messages' contents joined). */
export function promptText(req: Record<string, unknown>): string {
  if (typeof req.prompt === 'string') return req.prompt;
  if (Array.isArray(req.messages))
    return req.messages.map((m: { content?: unknown }) => String(m?.content ?? '')).join('\n');
  return '';
}

export class HybridRouter {
  protected readonly options: HybridRouterOptions;
  private readonly breakers: Record<ModelChoice, CircuitBreaker>;
  private readonly registry = new Registry();
  private readonly decisions: Counter<'model' | 'reason'>;
  private readonly cost: Counter<'model'>;
  private readonly failures: Counter<'model'>;

  constructor(
    private readonly small: DeploymentHandle,
    private readonly large: DeploymentHandle,
    options: HybridRouterOptions = {},
  ) {
    this.options = options;
    this.breakers = { small: new CircuitBreaker(options.breaker), large: new CircuitBreaker(options.breaker) };
    const registers = [this.registry];
    this.decisions = new Counter({
      name: 'flotilla_hybrid_decisions_total',
      help: 'Requests answered per model and why (classifier or fallback).',
      labelNames: ['model', 'reason'],
      registers,
    });
    this.cost = new Counter({
      name: 'flotilla_hybrid_estimated_cost_total',
      help: 'Estimated cost of answered requests per model (relative units).',
      labelNames: ['model'],
      registers,
    });
    this.failures = new Counter({
      name: 'flotilla_hybrid_failures_total',
      help: 'Failed calls per model (each retry counts).',
      labelNames: ['model'],
      registers,
    });
  }

  /** Which model should answer; override for a custom classifier. */
  protected async classify(req: Record<string, unknown>): Promise<ModelChoice> {
    if (this.options.classifier !== 'confidence') return heuristicChoice(promptText(req), this.options.heuristic);
    try {
      const probe = { ...req, temperature: 0, max_tokens: this.options.probeTokens ?? 4, logprobs: 0, n: 1 };
      const res = (await this.small.remote(this.options.method ?? 'grpcGenerate', [probe])) as {
        choices?: Array<{ logprobs?: Array<{ logprob: number }> }>;
      };
      const lps = res.choices?.[0]?.logprobs?.map((l) => l.logprob) ?? [];
      const mean = lps.length > 0 ? lps.reduce((a, b) => a + b, 0) / lps.length : -Infinity;
      return mean >= (this.options.confidenceThreshold ?? -1.5) ? 'small' : 'large';
    } catch {
      return 'large'; // the small model cannot even probe: do not send it the request
    }
  }

  /** Answers from the chosen model, falling back to the other one when it fails. */
  async generate(req: Record<string, unknown>): Promise<unknown> {
    const first = await this.classify(req);
    const order: ModelChoice[] = [first, first === 'small' ? 'large' : 'small'];
    let lastError: unknown;
    for (const model of order) {
      const attempt = await this.tryModel(model, req);
      if (attempt.ok) {
        this.decisions.inc({ model, reason: model === first ? 'classifier' : 'fallback' });
        this.cost.inc(
          { model },
          estimatedCost(req, this.options.costPer1kTokens?.[model] ?? (model === 'small' ? 1 : 10)),
        );
        return attempt.value;
      }
      lastError = attempt.error ?? lastError;
    }
    throw new HybridUnavailableError(
      `no model could answer: ${(lastError as Error | undefined)?.message ?? 'both circuits are open'}`,
      lastError,
    );
  }

  /** Decisions per model and reason, failures, and breaker states (for tests and dashboards). */
  async routerStats(): Promise<{
    decisions: Record<string, number>;
    failures: Record<string, number>;
    breakers: Record<ModelChoice, string>;
  }> {
    const flat = async (c: Counter<string>) =>
      Object.fromEntries((await c.get()).values.map((v) => [Object.values(v.labels).join('/'), v.value]));
    return {
      decisions: await flat(this.decisions),
      failures: await flat(this.failures),
      breakers: { small: this.breakers.small.state, large: this.breakers.large.state },
    };
  }

  async collectMetrics(): Promise<unknown[]> {
    return this.registry.getMetricsAsJSON();
  }

  private async tryModel(
    model: ModelChoice,
    req: Record<string, unknown>,
  ): Promise<{ ok: true; value: unknown } | { ok: false; error?: unknown }> {
    const breaker = this.breakers[model];
    const handle = model === 'small' ? this.small : this.large;
    const retries = this.options.retries ?? 2;
    let error: unknown;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (!breaker.canRequest()) return { ok: false, error };
      try {
        const value = await handle.remote(this.options.method ?? 'grpcGenerate', [req]);
        breaker.onSuccess();
        return { ok: true, value };
      } catch (err) {
        error = err;
        breaker.onFailure();
        this.failures.inc({ model });
        if (attempt < retries) await new Promise((r) => setTimeout(r, backoffDelayMs(attempt, this.options.backoff)));
      }
    }
    return { ok: false, error };
  }
}

/** Relative cost: (prompt tokens, estimated at 4 characters each, + max_tokens) × rate / 1000. */
export function estimatedCost(req: Record<string, unknown>, per1k: number): number {
  const maxTokens = typeof req.max_tokens === 'number' ? req.max_tokens : 16;
  return ((Math.ceil(promptText(req).length / 4) + maxTokens) * per1k) / 1000;
}
