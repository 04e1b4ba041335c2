/**
 * One sequence's grammar state: an XGrammar GrammarMatcher advanced by every token the sequence
 * keeps, and the allowed-token mask of its next token (token-mask.ts layout). The mask is computed
 * ahead (refresh()) — for a new sequence while the native step of others runs, after a step right when
 * its token is accepted — and the model runner copies it into the step. Freed with dispose() when the
 * sequence ends (finished, aborted, failed).
 */

/** The synchronous methods of XGrammar's GrammarMatcher binding that are used here. */
export interface MatcherHandle {
  AcceptToken(token: number, verbose: boolean): boolean;
  IsTerminated(): boolean;
  Rollback(n: number): void;
  delete(): void;
}

/** XGrammar's GrammarMatcher wrapper: its handle and the async mask call (a typed-array copy, no per-word calls). */
export interface MatcherLike {
  handle: MatcherHandle;
  getNextTokenBitmask(): Promise<Int32Array>;
}

export class GuidedMatcher {
  /** The next token's mask; null until refresh() has run since the last accepted token. */
  mask: Uint32Array | null = null;
  private disposed = false;
  private pending: Promise<void> | null = null;

  constructor(
    private readonly matcher: MatcherLike,
    /** Allowed tokens when the grammar leaves none (cannot happen with a vocabulary that spells it): the stop tokens. */
    private readonly fallback: Uint32Array,
  ) {}

  /** Computes the mask of the next token if it is not there yet. */
  refresh(): Promise<void> {
    if (this.mask || this.disposed) return Promise.resolve();
    this.pending ??= this.matcher.getNextTokenBitmask().then((m) => {
      this.pending = null;
      if (this.disposed) return;
      const mask = new Uint32Array(m.buffer, m.byteOffset, m.length);
      this.mask = mask.some((w) => w !== 0) ? mask : this.fallback;
    });
    // Prefetches call this without awaiting: a failure is kept in `pending` for the step that awaits it,
    // and must not surface meanwhile as an unhandled rejection.
    this.pending.catch(() => {});
    return this.pending;
  }

  /** Advances by a kept token; false when the grammar refused it (then nothing changed). */
  accept(token: number): boolean {
    if (this.disposed) return false;
    this.mask = null;
    return this.matcher.handle.AcceptToken(token, false);
  }

  /** Whether the grammar has ended (a stop token was accepted after a complete sentence). */
  get terminated(): boolean {
    return !this.disposed && this.matcher.handle.IsTerminated();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.mask = null;
    this.matcher.handle.delete();
  }
}
