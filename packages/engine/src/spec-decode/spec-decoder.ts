/**
 * Speculative decoding inside continuous batching. After the scheduler picked a step, every decode
 * of a speculating request gets up to k proposed tokens appended (n-gram lookup or the draft model)
 * and is widened from 1 to 1 + k tokens; prefills and non-speculating decodes ride along unchanged.
 * One target forward returns logits for the last 1 + k rows of each sequence; verification (exact
 * rejection sampling, greedy as its special case) decides what each sequence keeps, and
 * Scheduler.updateSpeculative() rolls back K/V of the rejected positions. Verification runs natively
 * where the addon has verify() (NativeModel.verify: proposals in, accepted counts and kept tokens out,
 * no logit row crossing into JS), with the draft's distributions packed for sampled draft proposals.
 * The TypeScript reference (sample/verify-rows.ts, the same tokens bit for bit) verifies instead from
 * logits() rows when a sequence of the step asks for logprobs (computed from those rows) or the model
 * lacks verify() (test fakes, the bench's twins); there, when every sequence is plainly greedy, the
 * native side returns only each row's argmax. Either way a non-speculating row gets the token the
 * native step would have given it.
 */
import { hasLogitBias } from '../logit-bias.js';
import type { ModelRunner } from '../model-runner.js';
import type { NativeDraftProbs, NativeModel } from '../native/native-types.js';
import type { TokenLogprob } from '../request-output.js';
import type { SchedulerOutput } from '../scheduler.js';
import type { Sequence } from '../sequence.js';
import type { BlockManager } from '../block-manager.js';
import type { DraftProposer } from './draft-proposer.js';
import { proposeNgram, type NgramOptions } from './ngram-proposer.js';
import { isPlainGreedy, verifyArgmax, verifyRows } from '../sample/verify-rows.js';
import { SpecDecodeMetrics } from './spec-metrics.js';

export type SpeculativeMethod = 'ngram' | 'draft';

/** What one speculative step produced, per sequence of the (possibly trimmed) scheduler output. */
export interface SpecStepResult {
  /** Kept tokens: accepted proposals then one corrected/bonus token; one sampled token without proposals; [] for a prefill chunk. */
  tokenIds: number[][];
  numDraftTokens: number[];
  /** Logprob records aligned with tokenIds, where the request asked for them. */
  logprobs: (TokenLogprob[] | null)[];
}

export interface SpecDecoderOptions {
  /** Proposed tokens per step for requests that do not set their own. */
  k: number;
  method: SpeculativeMethod;
  ngram: NgramOptions;
  draft: DraftProposer | null;
  maxNumBatchedTokens: number;
  maxModelLen: number;
  /** Steps running at least this many decodes do not speculate (Infinity: always speculate). */
  disableByBatchSize: number;
}

interface Plan {
  seq: Sequence;
  k: number;
  method: SpeculativeMethod;
}

export class SpecDecoder {
  readonly metrics = new SpecDecodeMetrics();
  private readonly opts: SpecDecoderOptions;
  /** Packed draft distributions handed to verify(), grown on demand. */
  private qBuffer = new Float64Array(0);

  constructor(opts: SpecDecoderOptions) {
    this.opts = opts;
  }

  /** Proposed tokens a sequence wants per step, and by which method (k 0 = none). */
  configFor(seq: Sequence): { k: number; method: SpeculativeMethod } {
    const s = seq.params.speculative;
    // A guided sequence's mask holds for its next token only: it does not speculate.
    if (s === false || seq.params.guided) return { k: 0, method: this.opts.method };
    const method = s?.method ?? this.opts.method;
    const k = method === 'draft' && !this.opts.draft ? 0 : (s?.k ?? this.opts.k);
    return { k, method };
  }

  /**
   * Runs the step with speculation, or returns null (having changed nothing the engine cares
   * about) when no sequence of it speculates: the engine then runs the plain native step.
   */
  async step(
    out: SchedulerOutput,
    model: NativeModel,
    runner: ModelRunner,
    bm: BlockManager,
  ): Promise<SpecStepResult | null> {
    // Verification samples in JS from raw logits: a step holding a sequence with a logit bias (or a
    // min_tokens ban, logit-bias.ts) runs as a plain native step, which applies it.
    if (out.seqs.some(hasLogitBias)) return null;
    // Guided sequences ride along without proposals; only native verification applies their masks
    // (k = 0: the step's own masked draw), so a step that would verify in JS runs as a plain step.
    if (out.seqs.some((seq) => seq.guided) && (!model.verify || out.seqs.some(wantsLogprobs))) return null;
    const plans = this.plan(out);
    if (plans.length === 0) return null;
    const proposals = await this.propose(plans);
    dropFinished(out);
    if (!this.expand(out, plans, proposals, bm)) {
      if (out.seqs.length > 0) return null;
      return { tokenIds: [], numDraftTokens: [], logprobs: [] };
    }
    const batch = runner.prepare(out);
    const numDraft = out.seqs.map((seq) => proposals.get(seq)?.tokens.length ?? 0);
    const logitRows = Int32Array.from(numDraft, (k) => k + 1);
    const result: SpecStepResult = { tokenIds: [], numDraftTokens: numDraft, logprobs: [] };
    if (model.verify && !out.seqs.some(wantsLogprobs)) {
      const draft = this.draftProbs(out, proposals, model.config.vocabSize);
      const res = await model.verify(batch, logitRows, draft, runner.verifyOutput);
      let r = 0;
      for (let s = 0; s < out.seqs.length; s++) {
        const a = res.numAccepted[s]!;
        if (a < 0) {
          result.tokenIds.push([]);
          result.logprobs.push(null);
          continue;
        }
        const k = numDraft[s]!;
        result.tokenIds.push(Array.from(res.tokens.subarray(r, r + a + 1)));
        result.logprobs.push(null);
        r += k + 1;
        this.metrics.record(k, a);
      }
      return result;
    }
    const S = out.seqs.length;
    const ids = model.argmax && out.seqs.every(isPlainGreedy) ? await model.argmax(batch, logitRows) : null;
    const logits = ids ? null : await model.logits(batch, logitRows);
    const V = model.config.vocabSize;
    let r = 0;
    for (let s = 0; s < S; s++) {
      if (!batch.sampleMask[s]) {
        result.tokenIds.push([]);
        result.logprobs.push(null);
        continue;
      }
      const k = numDraft[s]!;
      const prop = proposals.get(out.seqs[s]!) ?? null;
      const rows = logits
        ? Array.from({ length: k + 1 }, (_, j) => logits.subarray((r + j) * V, (r + j + 1) * V))
        : null;
      const { tokens, numAccepted, logprobs } = rows
        ? verifyRows(out.seqs[s]!, rows, prop)
        : verifyArgmax(ids!.subarray(r, r + k + 1), prop);
      r += k + 1;
      this.metrics.record(k, numAccepted);
      result.tokenIds.push(tokens);
      result.logprobs.push(logprobs);
    }
    return result;
  }

  /** The draft distributions of the step's sampled draft proposals for verify(), packed; null when there are none. */
  private draftProbs(
    out: SchedulerOutput,
    proposals: Map<Sequence, { tokens: number[]; q: Float64Array[] | null }>,
    V: number,
  ): NativeDraftProbs | null {
    let n = 0;
    for (const seq of out.seqs) n += proposals.get(seq)?.q?.length ?? 0;
    if (n === 0) return null;
    if (this.qBuffer.length < n * V) this.qBuffer = new Float64Array(Math.max(n * V, this.qBuffer.length * 2));
    const rows = new Int32Array(out.seqs.length).fill(-1);
    let row = 0;
    out.seqs.forEach((seq, s) => {
      const q = proposals.get(seq)?.q;
      if (!q || q.length === 0) return;
      rows[s] = row;
      for (const dist of q) this.qBuffer.set(dist, row++ * V);
    });
    return { probs: this.qBuffer.subarray(0, n * V), rows };
  }

  /** Decodes (one token behind) of speculating sequences, with k capped by output room and the token budget. */
  private plan(out: SchedulerOutput): Plan[] {
    const plans: Plan[] = [];
    if (this.opts.disableByBatchSize !== Infinity && countDecodes(out) >= this.opts.disableByBatchSize) return plans;
    let budget = this.opts.maxNumBatchedTokens - out.numBatchedTokens;
    for (let i = 0; i < out.seqs.length && budget > 0; i++) {
      const seq = out.seqs[i]!;
      const { k: want, method } = this.configFor(seq);
      if (want <= 0 || out.numNewTokens[i] !== 1 || seq.numTokens - seq.numComputedTokens !== 1) continue;
      // Room: the kept tokens (up to k + 1) must fit maxTokens and the context.
      const room = Math.min(seq.params.maxTokens - seq.numOutputTokens, this.opts.maxModelLen - seq.numTokens) - 1;
      const k = Math.min(want, room, budget);
      if (k <= 0) continue;
      budget -= k;
      plans.push({ seq, k, method });
    }
    return plans;
  }

  private async propose(
    plans: readonly Plan[],
  ): Promise<Map<Sequence, { tokens: number[]; q: Float64Array[] | null }>> {
    const map = new Map<Sequence, { tokens: number[]; q: Float64Array[] | null }>();
    const drafted: Plan[] = [];
    for (const p of plans) {
      if (p.method === 'draft') drafted.push(p);
      else map.set(p.seq, { tokens: proposeNgram(p.seq.tokenIds, p.seq.numTokens, p.k, this.opts.ngram), q: null });
    }
    if (drafted.length > 0 && this.opts.draft) {
      const props = await this.opts.draft.propose(drafted);
      drafted.forEach((p, i) => map.set(p.seq, props[i]!));
    }
    return map;
  }

  /** Appends proposals and widens the step; drops proposals that do not fit the KV pool. False when none is left. */
  private expand(
    out: SchedulerOutput,
    plans: readonly Plan[],
    proposals: Map<Sequence, { tokens: number[] }>,
    bm: BlockManager,
  ): boolean {
    let any = false;
    for (const { seq } of plans) {
      const prop = proposals.get(seq);
      const i = out.seqs.indexOf(seq);
      if (!prop || i < 0 || prop.tokens.length === 0 || !bm.allocate(seq, 1 + prop.tokens.length)) {
        proposals.delete(seq);
        continue;
      }
      for (const t of prop.tokens) seq.appendToken(t);
      out.numNewTokens[i] = 1 + prop.tokens.length;
      out.numBatchedTokens += prop.tokens.length;
      any = true;
    }
    return any;
  }
}

function wantsLogprobs(seq: Sequence): boolean {
  return seq.params.logprobs !== undefined;
}

function countDecodes(out: SchedulerOutput): number {
  let n = 0;
  for (let i = 0; i < out.seqs.length; i++) if (out.numNewTokens[i] === 1 && !out.seqs[i]!.isPrefill) n++;
  return n;
}

/** Removes sequences finished (aborted) while proposals were computed. */
function dropFinished(out: SchedulerOutput): void {
  for (let i = out.seqs.length - 1; i >= 0; i--) {
    if (out.seqs[i]!.status === 'running') continue;
    out.numBatchedTokens -= out.numNewTokens[i]!;
    out.seqs.splice(i, 1);
    out.numNewTokens.splice(i, 1);
  }
}
