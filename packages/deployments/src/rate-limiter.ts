/**
 * Per-key rate limits shared by every replica of an LLM deployment. `rateLimits` on LLMServer keeps
 * token buckets inside each replica, which is exact only for one replica (with N replicas a key could
 * get N times its limit). A RateLimiter is a deployment of its own, with one replica holding the buckets;
 * LLMServer replicas given it (LLMServer's second argument) ask it before each request (one handle call, awaited) and
 * settle the token reservation afterwards (one call, not awaited), so a key's limit holds however many
 * replicas serve it and wherever they run. Subclass and decorate it, keeping one replica:
 *
 * ```ts
 * @deployment() class Limits extends RateLimiter {}
 * @deployment({ numReplicas: 4 }) class LLM extends LLMServer {}
 * export const app = LLM.bind({ model, apiKeys }, Limits.bind({ requests: { perMinute: 60 } }));
 * ```
 *
 * If the limiter cannot be reached, requests fail with 503 (closed, not open: an outage of the limiter
 * must not lift every key's limit). Its state is in memory: a restarted limiter starts with full buckets.
 */
import { KeyBuckets, type RateDecision, type RateLimits } from './guard.js';

export class RateLimiter {
  readonly #buckets: KeyBuckets;

  constructor(limits: RateLimits = {}) {
    this.#buckets = new KeyBuckets(limits);
  }

  /** Takes one request of `keyId` and reserves `estimatedTokens`; a refusal says why and when to retry. */
  admit(keyId: string, estimatedTokens: number): RateDecision {
    return this.#buckets.take(keyId, estimatedTokens);
  }

  /** Settles a reservation made by admit() against the tokens really used. */
  settle(keyId: string, reservedTokens: number, usedTokens: number): void {
    this.#buckets.settle(keyId, reservedTokens, usedTokens);
  }
}
