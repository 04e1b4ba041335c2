/**
 * Proposals from a draft model: a second native model sharing the target's tokenizer, with its own
 * KV pool, BlockManager and ModelRunner. Each target sequence that speculates has a shadow Sequence
 * here mirroring its tokens. Per round the shadow catches up with the target (rolling back K/V of
 * proposals the target rejected), then k batched draft forwards propose k tokens, each drawn from
 * the draft's distribution q (kept for rejection sampling when the request samples).
 */
import { BlockManager } from '../block-manager.js';
import { BlockPool } from '../block-pool.js';
import { ModelRunner } from '../model-runner.js';
import type { NativeModel } from '../native/native-types.js';
import type { SchedulerOutput } from '../scheduler.js';
import { Sequence } from '../sequence.js';
import { argmax, candidates, distribution, uniform, walk } from '../sample/sampler.js';

/** Salt of the draft's draws, so they are independent of the target's draws at the same position. */
const DRAFT_SALT = 0x5bd1e995;

export interface DraftProposal {
  tokens: number[];
  /** q_i per proposed token (dense, vocab), or null when the request is greedy. */
  q: Float64Array[] | null;
}

export interface DraftRequest {
  seq: Sequence;
  /** Most tokens to propose. */
  k: number;
}

export interface DraftProposerOptions {
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
  /** The target's maxModelLen; the draft serves up to the smaller of it and its own maxSeqLen. */
  maxModelLen: number;
}

interface Shadow {
  target: Sequence;
  seq: Sequence;
  /** Leading tokens known equal to the target's. */
  synced: number;
}

export class DraftProposer {
  readonly maxModelLen: number;
  private readonly model: NativeModel;
  private readonly blockManager: BlockManager;
  private readonly runner: ModelRunner;
  private readonly maxNumBatchedTokens: number;
  private readonly shadows = new Map<number, Shadow>();
  /** (maxNumSeqs) tokens each row of a fused draft call proposes. */
  private readonly numDraft: Int32Array;
  private step = 0;

  constructor(model: NativeModel, opts: DraftProposerOptions) {
    this.model = model;
    this.maxModelLen = Math.min(opts.maxModelLen, model.config.maxSeqLen);
    this.maxNumBatchedTokens = opts.maxNumBatchedTokens;
    // No prefix caching: shadows are short-lived mirrors and rolling back is simpler without it.
    this.blockManager = new BlockManager(new BlockPool(model.numBlocks, model.blockSize), false);
    this.runner = new ModelRunner(model, {
      blockSize: model.blockSize,
      maxNumBatchedTokens: opts.maxNumBatchedTokens,
      maxNumSeqs: opts.maxNumSeqs,
      maxModelLen: this.maxModelLen,
    });
    this.numDraft = new Int32Array(opts.maxNumSeqs);
  }

  get numShadows(): number {
    return this.shadows.size;
  }

  /** Proposals aligned with `reqs` (empty where the draft has no room). */
  async propose(reqs: readonly DraftRequest[]): Promise<DraftProposal[]> {
    this.collect();
    const out: DraftProposal[] = reqs.map((r) => ({ tokens: [], q: r.seq.params.temperature > 0 ? [] : null }));
    const active: number[] = [];
    let budget = this.maxNumBatchedTokens;
    for (let i = 0; i < reqs.length; i++) {
      const { seq, k } = reqs[i]!;
      if (seq.numTokens + k - 1 > this.maxModelLen) continue;
      const sh = this.sync(seq);
      const behind = sh.seq.numTokens - sh.seq.numComputedTokens;
      if (behind > budget || !this.blockManager.allocate(sh.seq, behind + k - 1)) continue;
      budget -= behind;
      active.push(i);
    }
    // Rollbacks freed blocks that may come back at the same table index: the runner's per-row cache of
    // block tables would miss that, so every row is rewritten (a few ints per sequence).
    this.runner.invalidate();
    try {
      if (active.length > 0 && this.canFuse(reqs, active)) await this.forwardFused(reqs, active, out);
      for (let j = 0; active.length > 0; j++) {
        await this.forward(reqs, active, out, j === 0);
        for (let a = active.length - 1; a >= 0; a--)
          if (out[active[a]!]!.tokens.length >= reqs[active[a]!]!.k) active.splice(a, 1);
      }
    } catch (err) {
      this.runner.invalidate();
      this.reset();
      throw err;
    }
    return out;
  }

  /**
   * Says that `target`'s tokens from `from` on were replaced (not only extended) since the last
   * propose(), so its shadow compares them again instead of trusting them: the engine's sequences only
   * grow or roll back, but a session's mirror (SessionDrafter) takes whatever tokens a call carries.
   */
  unsync(target: Sequence, from: number): void {
    const sh = this.shadows.get(target.seqId);
    if (sh && sh.target === target) sh.synced = Math.min(sh.synced, Math.max(from, target.promptLen));
  }

  /** Frees every shadow (after an error, or when the engine is disposed). */
  reset(): void {
    for (const sh of this.shadows.values()) this.blockManager.free(sh.seq);
    this.shadows.clear();
  }

  /** The addon's fused draft() serves the round: it has one and every request is greedy without penalties (raw argmax). */
  private canFuse(reqs: readonly DraftRequest[], active: readonly number[]): boolean {
    if (!this.model.draft || active.length > this.numDraft.length) return false;
    return active.every((i) => {
      const p = reqs[i]!.seq.params;
      return p.temperature === 0 && p.repetitionPenalty === 1 && p.presencePenalty === 0 && p.frequencyPenalty === 0;
    });
  }

  /** All k proposals of every active shadow in one native call (the catch-up chunk, then k − 1 decodes); empties `active`. */
  private async forwardFused(reqs: readonly DraftRequest[], active: number[], out: DraftProposal[]): Promise<void> {
    const so = this.output(reqs, active, true);
    let k = 1;
    for (let s = 0; s < active.length; s++) {
      this.numDraft[s] = reqs[active[s]!]!.k;
      k = Math.max(k, this.numDraft[s]!);
    }
    const tokens = await this.model.draft!(this.runner.prepare(so), k, this.numDraft);
    for (let s = 0; s < active.length; s++) {
      const seq = so.seqs[s]!;
      const prop = out[active[s]!]!;
      for (let j = 0; j < this.numDraft[s]!; j++) {
        const token = tokens[s * k + j]!;
        prop.tokens.push(token);
        seq.appendToken(token);
      }
      // K/V is written for every token but the last proposal, as after k single forwards.
      seq.numComputedTokens = seq.numTokens - 1;
    }
    active.length = 0;
  }

  /** The catch-up chunk (first) or one decode per active shadow. */
  private output(reqs: readonly DraftRequest[], active: readonly number[], first: boolean): SchedulerOutput {
    const so: SchedulerOutput = { step: ++this.step, seqs: [], numNewTokens: [], numBatchedTokens: 0, preempted: [] };
    for (const i of active) {
      const sh = this.shadows.get(reqs[i]!.seq.seqId)!;
      const n = first ? sh.seq.numTokens - sh.seq.numComputedTokens : 1;
      so.seqs.push(sh.seq);
      so.numNewTokens.push(n);
      so.numBatchedTokens += n;
    }
    return so;
  }

  /** One batched draft forward: the catch-up chunk (first) or one decode per active shadow. */
  private async forward(
    reqs: readonly DraftRequest[],
    active: readonly number[],
    out: DraftProposal[],
    first: boolean,
  ): Promise<void> {
    const so = this.output(reqs, active, first);
    const batch = this.runner.prepare(so);
    // All greedy (the common case): the native step's argmax, one int per row instead of a logits row
    // copied out and scanned here. Sampling requests need the draft's distributions, so their logits.
    const greedy = so.seqs.every((seq) => seq.params.temperature === 0);
    const tokens = greedy ? (await this.model.step(batch, this.runner.output)).tokens : null;
    const logits = greedy ? null : await this.model.logits(batch);
    const V = this.model.config.vocabSize;
    for (let s = 0; s < active.length; s++) {
      const seq = so.seqs[s]!;
      seq.numComputedTokens += so.numNewTokens[s]!;
      const prop = out[active[s]!]!;
      let token: number;
      if (tokens) token = tokens[s]!;
      else {
        const row = logits!.subarray(s * V, (s + 1) * V);
        const p = seq.params;
        token =
          p.temperature === 0
            ? argmax(row)
            : walk(candidates(row, p), uniform((seq.seed ^ DRAFT_SALT) >>> 0, seq.numTokens));
        prop.q?.push(distribution(row, p));
      }
      prop.tokens.push(token);
      seq.appendToken(token);
    }
  }

  /** The shadow of `target`, its tokens made equal to the target's and its K/V rolled back to what still matches. */
  private sync(target: Sequence): Shadow {
    let sh = this.shadows.get(target.seqId);
    if (!sh || sh.target !== target) {
      const seq = new Sequence({
        seqId: target.seqId,
        requestId: target.requestId,
        index: target.index,
        promptTokenIds: target.tokenIds.subarray(0, target.promptLen),
        params: target.params,
        seed: target.seed,
        stopTokenIds: [],
        blockSize: this.blockManager.blockSize,
      });
      sh = { target, seq, synced: target.promptLen };
      this.shadows.set(target.seqId, sh);
    }
    const s = sh.seq;
    let common = sh.synced;
    const limit = Math.min(s.numTokens, target.numTokens);
    while (common < limit && s.tokenIds[common] === target.tokenIds[common]) common++;
    this.blockManager.rollback(s, Math.min(s.numComputedTokens, common, target.numTokens - 1));
    s.numTokens = Math.max(s.numComputedTokens, Math.min(common, target.numTokens));
    while (s.numTokens < target.numTokens) s.appendToken(target.tokenIds[s.numTokens]!);
    sh.synced = target.numTokens;
    return sh;
  }

  /** Frees shadows of finished target sequences. */
  private collect(): void {
    for (const [id, sh] of this.shadows) {
      if (!sh.target.isFinished) continue;
      this.blockManager.free(sh.seq);
      this.shadows.delete(id);
    }
  }
}
