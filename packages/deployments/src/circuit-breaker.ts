/**
 * A circuit breaker per downstream deployment, as pure policy over an injected clock: closed (calls
 * go through) → open after `failureThreshold` consecutive failures (calls are refused at once, so a
 * failing model is not hammered and the caller falls back) → half-open after `openMs` (one probe
 * goes through: success closes, failure opens again). Plus the delay of retry n with exponential
 * backoff and jitter. No timers: callers ask `canRequest()` when they want to call.
 */

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Default 3. */
  failureThreshold?: number;
  /** How long the circuit stays open before a probe is let through, ms. Default 10000. */
  openMs?: number;
  /** Time source in ms. Default Date.now. */
  now?: () => number;
}

export class CircuitBreaker {
  private readonly failureThreshold: number;
  private readonly openMs: number;
  private readonly now: () => number;
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private current: BreakerState = 'closed';

  constructor(opts: CircuitBreakerOptions = {}) {
    this.failureThreshold = opts.failureThreshold ?? 3;
    this.openMs = opts.openMs ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** The state now (an open circuit whose time is up reads as half-open). */
  get state(): BreakerState {
    if (this.current === 'open' && this.now() - this.openedAt >= this.openMs) return 'half-open';
    return this.current;
  }

  /** Whether a call may go now; in half-open, only one probe at a time (this call takes the slot). */
  canRequest(): boolean {
    const s = this.state;
    if (s === 'closed') return true;
    if (s === 'open') return false;
    if (this.probing) return false;
    this.current = 'half-open';
    this.probing = true;
    return true;
  }

  onSuccess(): void {
    this.failures = 0;
    this.probing = false;
    this.current = 'closed';
  }

  onFailure(): void {
    this.probing = false;
    this.failures++;
    if (this.current === 'half-open' || this.failures >= this.failureThreshold) {
      this.current = 'open';
      this.openedAt = this.now();
    }
  }
}

export interface BackoffOptions {
  /** Delay before the first retry, ms. Default 100. */
  baseMs?: number;
  /** Largest delay, ms. Default 5000. */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Fraction of the delay drawn at random (spreads retries of many callers), 0..1. Default 0.2. */
  jitter?: number;
}

/** Delay before retry `attempt` (0-based): min(maxMs, baseMs · factor^attempt), minus up to `jitter` of it. */
export function backoffDelayMs(attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = opts.baseMs ?? 100;
  const max = opts.maxMs ?? 5000;
  const delay = Math.min(max, base * (opts.factor ?? 2) ** attempt);
  return delay * (1 - (opts.jitter ?? 0.2) * random());
}
