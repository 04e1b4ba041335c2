/**
 * Counters of speculative decoding, read by LLMEngine.stats(): how many verifications ran, how many
 * tokens were proposed and accepted, and the acceptance rate at each draft position (position i is
 * only tried when positions < i were accepted, so the rate there is conditional on reaching it).
 */

export interface SpecDecodeStats {
  /** Verifications run with at least one proposed token. */
  drafts: number;
  draftTokens: number;
  acceptedTokens: number;
  /** acceptedTokens / draftTokens, 0..1 (0 before any draft). */
  acceptanceRate: number;
  /**
   * accepted / judged, where a proposal is judged only up to the first rejection: the per-token
   * agreement of draft and target (for a greedy pair, their next-token agreement rate), 0..1.
   */
  agreementRate: number;
  /** Tokens emitted per verification (accepted + 1): the target passes saved. */
  meanTokensPerPass: number;
  /** Per draft position i (0-based): accepted / tried there. */
  acceptanceByPosition: number[];
  /** Per draft position: how often it was tried. */
  triedByPosition: number[];
  /** Per draft position: how often its proposal was accepted (vLLM's spec_decode_num_accepted_tokens_per_pos). */
  acceptedByPosition: number[];
}

export class SpecDecodeMetrics {
  drafts = 0;
  draftTokens = 0;
  acceptedTokens = 0;
  private readonly tried: number[] = [];
  private readonly accepted: number[] = [];

  /** One verification of `numProposed` tokens of which the first `numAccepted` were accepted. */
  record(numProposed: number, numAccepted: number): void {
    if (numProposed === 0) return;
    this.drafts++;
    this.draftTokens += numProposed;
    this.acceptedTokens += numAccepted;
    // Positions past the first rejection were never judged, so they count as not tried.
    const judged = Math.min(numProposed, numAccepted + 1);
    for (let i = 0; i < judged; i++) {
      this.tried[i] = (this.tried[i] ?? 0) + 1;
      if (i < numAccepted) this.accepted[i] = (this.accepted[i] ?? 0) + 1;
    }
  }

  stats(): SpecDecodeStats {
    return {
      drafts: this.drafts,
      draftTokens: this.draftTokens,
      acceptedTokens: this.acceptedTokens,
      acceptanceRate: this.draftTokens > 0 ? this.acceptedTokens / this.draftTokens : 0,
      agreementRate: sum(this.tried) > 0 ? this.acceptedTokens / sum(this.tried) : 0,
      meanTokensPerPass: this.drafts > 0 ? (this.acceptedTokens + this.drafts) / this.drafts : 0,
      acceptanceByPosition: this.tried.map((t, i) => (t > 0 ? (this.accepted[i] ?? 0) / t : 0)),
      triedByPosition: [...this.tried],
      acceptedByPosition: this.tried.map((_, i) => this.accepted[i] ?? 0),
    };
  }
}

function sum(xs: readonly number[]): number {
  let t = 0;
  for (const x of xs) t += x ?? 0;
  return t;
}
