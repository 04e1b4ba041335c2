/**
 * A token bucket: `capacity` tokens, refilled at `refillPerS`. Pure policy over an injected clock, so
 * tests drive time by hand. Takes may push the level below zero (debt) when the real cost is known only
 * afterwards (tokens generated): the bucket then refuses until the debt is repaid.
 */
export class TokenBucket {
  private level: number;
  private updatedAtMs: number;

  constructor(
    readonly capacity: number,
    readonly refillPerS: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!(capacity > 0) || !(refillPerS > 0))
      throw new RangeError(`a token bucket needs capacity > 0 and refillPerS > 0, got ${capacity}, ${refillPerS}`);
    this.level = capacity;
    this.updatedAtMs = now();
  }

  /** Tokens available now (negative while in debt). */
  get available(): number {
    this.refill();
    return this.level;
  }

  /** Takes `n` if that many are available; returns false (taking nothing) otherwise. */
  tryTake(n = 1): boolean {
    this.refill();
    if (this.level < n) return false;
    this.level -= n;
    return true;
  }

  /** Takes `n` unconditionally (the level may go negative). */
  charge(n: number): void {
    this.refill();
    this.level -= n;
  }

  /** Gives back `n` (e.g. an estimate charged up front that turned out too high), up to capacity. */
  refund(n: number): void {
    this.refill();
    this.level = Math.min(this.capacity, this.level + n);
  }

  /** True when the bucket is at capacity: indistinguishable from a new one, so a holder may drop it. */
  get isFull(): boolean {
    this.refill();
    return this.level >= this.capacity;
  }

  /** Seconds until `n` tokens are available (0 if they are now); Infinity if n exceeds capacity. */
  secondsUntil(n = 1): number {
    this.refill();
    if (n > this.capacity) return Infinity;
    return this.level >= n ? 0 : (n - this.level) / this.refillPerS;
  }

  private refill(): void {
    const t = this.now();
    const elapsedS = Math.max(0, t - this.updatedAtMs) / 1000;
    this.updatedAtMs = t;
    this.level = Math.min(this.capacity, this.level + elapsedS * this.refillPerS);
  }
}
