/** PdRouter's counters: how requests went (PD, local, fallback) and what the KV transfers cost. */
import type { PrefillHandoff } from './pd-wire.js';

export class PdStats {
  pd = 0;
  local = 0;
  fallbacks = 0;
  /** Decodes sent to the replica DecodeChoice picked (the rest: the core router's choice). */
  pinned = 0;
  promptTokens = 0;
  kvBytes = 0;
  /** From the handoff's arrival here to the decode replica's first report: the payload sent and accepted. */
  transferMs = 0;
  /** From the handoff's arrival here to the second token: transfer, import between steps, one decode step. */
  resumeMs = 0;
  resumes = 0;
  transfers = 0;
  /** Prompt tokens of the requests whose KV was sent to a decode replica. */
  transferTokens = 0;
  prefillMs = 0;

  prefilled(promptTokens: number, h: PrefillHandoff): void {
    this.pd++;
    this.promptTokens += promptTokens;
    this.kvBytes += h.handoff.kv?.byteLength ?? 0;
    this.prefillMs += h.prefillMs;
  }

  /** The last 64 transfers: prompt tokens, payload bytes, milliseconds (for per-size figures). */
  readonly recent: Array<{ tokens: number; bytes: number; ms: number }> = [];

  transferred(promptTokens: number, ms: number, bytes = 0): void {
    this.recent.push({ tokens: promptTokens, bytes, ms });
    if (this.recent.length > 64) this.recent.shift();
    this.transfers++;
    this.transferTokens += promptTokens;
    this.transferMs += ms;
  }

  resumed(ms: number): void {
    this.resumes++;
    this.resumeMs += ms;
  }

  snapshot() {
    const perToken = (x: number) => (this.promptTokens > 0 ? x / this.promptTokens : 0);
    return {
      pd: this.pd,
      local: this.local,
      fallbacks: this.fallbacks,
      pinned: this.pinned,
      promptTokens: this.promptTokens,
      kvBytes: this.kvBytes,
      kvBytesPerPromptToken: perToken(this.kvBytes),
      prefillMsPerPromptToken: perToken(this.prefillMs),
      transferMsPerPromptToken: this.transferTokens > 0 ? this.transferMs / this.transferTokens : 0,
      resumeMsMean: this.resumes > 0 ? this.resumeMs / this.resumes : 0,
      transfers: this.transfers,
      recentTransfers: [...this.recent],
    };
  }
}
