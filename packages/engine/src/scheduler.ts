/**
 * Continuous batching as pure policy: each `schedule()` picks which sequences run how many tokens in
 * the next step, and `update()` advances the counters with what the step sampled. No I/O, timers or
 * native calls; the engine (or a unit test) drives it.
 *
 * Order within a step: running decodes first, then running prefills that are partway through (chunked),
 * then waiting sequences in arrival order (preempted ones at the front) while the token budget, the
 * sequence cap and the free blocks last. When a running sequence needs a block and none is free, the
 * newest running sequence not yet scheduled this step is preempted by recompute: its blocks are freed
 * and it waits again; the prefix cache usually returns most of them on resumption, and since every
 * draw depends only on (seed, position) it produces the same output.
 */
import type { BlockManager } from './block-manager.js';
import { checkTokenStop, type FinishReason, type Sequence } from './sequence.js';

export interface SchedulerConfig {
  /** Most tokens (prefill chunks plus decodes) in one step. Default 2048. */
  maxNumBatchedTokens?: number;
  /** Most sequences running at once, and so in one step. Default 256. */
  maxNumSeqs?: number;
  /**
   * Split prompts that do not fit the rest of a step's token budget across steps. When false a prompt
   * waits until it fits whole (so it must be at most maxNumBatchedTokens). Default true.
   */
  enableChunkedPrefill?: boolean;
  /** Longest sequence (prompt + output) the model serves; a sequence reaching it stops with 'length'. */
  maxModelLen: number;
}

export const DEFAULT_MAX_NUM_BATCHED_TOKENS = 2048;
export const DEFAULT_MAX_NUM_SEQS = 256;

/** What runs in one step. Valid until the next schedule(). */
export interface SchedulerOutput {
  /** The step number (1, 2, ...). */
  step: number;
  /** Scheduled sequences in batch order. */
  seqs: Sequence[];
  /** seqs[i] runs numNewTokens[i] tokens starting at position seqs[i].numComputedTokens. */
  numNewTokens: number[];
  /** Sum of numNewTokens. */
  numBatchedTokens: number;
  /** Sequences this schedule() preempted (blocks freed, waiting again). */
  preempted: Sequence[];
}

/** What the step produced: sampledTokenIds[i] for output.seqs[i], -1 where it sampled nothing. */
export interface StepOutcome {
  sampledTokenIds: ArrayLike<number>;
}

export class Scheduler {
  readonly maxNumBatchedTokens: number;
  readonly maxNumSeqs: number;
  readonly enableChunkedPrefill: boolean;
  readonly maxModelLen: number;
  readonly blockManager: BlockManager;
  /** Arrival order; preempted sequences go back to the front. */
  readonly waiting: Sequence[] = [];
  /** Admission order (oldest first), so the newest is preempted first. */
  readonly running: Sequence[] = [];
  numPreemptions = 0;
  private step = 0;

  constructor(config: SchedulerConfig, blockManager: BlockManager) {
    this.maxNumBatchedTokens = config.maxNumBatchedTokens ?? DEFAULT_MAX_NUM_BATCHED_TOKENS;
    this.maxNumSeqs = config.maxNumSeqs ?? DEFAULT_MAX_NUM_SEQS;
    this.enableChunkedPrefill = config.enableChunkedPrefill ?? true;
    this.maxModelLen = config.maxModelLen;
    this.blockManager = blockManager;
  }

  get hasWork(): boolean {
    return this.running.length > 0 || this.waiting.length > 0;
  }

  add(seq: Sequence): void {
    if (seq.status !== 'waiting') throw new Error(`assertion: adding sequence ${seq.seqId} in state ${seq.status}`);
    this.waiting.push(seq);
  }

  schedule(): SchedulerOutput {
    const out: SchedulerOutput = { step: ++this.step, seqs: [], numNewTokens: [], numBatchedTokens: 0, preempted: [] };
    this.scheduleRunning(out, false);
    this.scheduleRunning(out, true);
    // Sequences preempted this step would only be preempted again; admit nothing new until things settle.
    if (out.preempted.length === 0) this.scheduleWaiting(out);
    return out;
  }

  /**
   * Advances every scheduled sequence by what it ran, appends sampled tokens and finishes sequences
   * that hit a stop token or their length. Sequences finished meanwhile (aborted) are skipped.
   * Returns the sequences finished here (their blocks already freed).
   */
  update(output: SchedulerOutput, outcome: StepOutcome): Sequence[] {
    const finished: Sequence[] = [];
    for (let i = 0; i < output.seqs.length; i++) {
      const seq = output.seqs[i]!;
      if (seq.status !== 'running') continue;
      seq.numComputedTokens += output.numNewTokens[i]!;
      this.blockManager.cacheFullBlocks(seq);
      const token = outcome.sampledTokenIds[i]!;
      if (token < 0) continue;
      seq.appendToken(token);
      const reason = checkTokenStop(seq, token, this.maxModelLen);
      if (reason) {
        this.finish(seq, reason);
        finished.push(seq);
      }
    }
    return finished;
  }

  /**
   * update() for a speculative step, where seqs[i] ran numDraftTokens[i] proposed tokens after its
   * real last token and tokenIds[i] holds what verification kept (accepted proposals, then one
   * corrected or bonus token; for a row without proposals, its one sampled token or nothing). The
   * proposals are dropped, K/V past the accepted ones rolled back, then the kept tokens appended one
   * by one with the usual stop checks; `onToken(i, j, token)` runs after each (it may finish the
   * sequence, e.g. on a stop string, which drops the rest). Returns how many tokens each appended.
   */
  updateSpeculative(
    output: SchedulerOutput,
    tokenIds: readonly (readonly number[])[],
    numDraftTokens: ArrayLike<number>,
    onToken?: (seqIndex: number, tokenIndex: number, tokenId: number) => void,
  ): number[] {
    const appended = new Array<number>(output.seqs.length).fill(0);
    for (let i = 0; i < output.seqs.length; i++) {
      const seq = output.seqs[i]!;
      if (seq.status !== 'running') continue;
      const k = numDraftTokens[i]!;
      const kept = tokenIds[i]!;
      if (k > 0) {
        seq.truncate(seq.numTokens - k);
        this.blockManager.rollback(
          seq,
          seq.numComputedTokens + output.numNewTokens[i]! - k + Math.max(0, kept.length - 1),
        );
      } else {
        seq.numComputedTokens += output.numNewTokens[i]!;
      }
      for (const token of kept) {
        seq.appendToken(token);
        appended[i]++;
        const reason = checkTokenStop(seq, token, this.maxModelLen);
        if (reason) this.finish(seq, reason);
        onToken?.(i, appended[i]! - 1, token);
        if (seq.status !== 'running') break;
      }
      // After appending, so the hashed blocks hold kept tokens only.
      if (seq.status === 'running') this.blockManager.cacheFullBlocks(seq);
    }
    return appended;
  }

  /**
   * Admits a sequence whose first `numTokens` tokens' K/V come from another engine (KV import): it
   * takes blocks for them and runs from the next step, its K/V counted as computed (the caller copies
   * them in before that step). False, having taken nothing, when the seat cap or the free blocks say wait.
   */
  admitImported(seq: Sequence, numTokens: number): boolean {
    if (seq.status !== 'waiting' || seq.numBlocks !== 0)
      throw new Error(`assertion: importing into sequence ${seq.seqId} in state ${seq.status}`);
    if (this.running.length >= this.maxNumSeqs || !this.blockManager.allocate(seq, numTokens)) return false;
    seq.numComputedTokens = numTokens;
    seq.status = 'running';
    this.running.push(seq);
    return true;
  }

  /** Ends a sequence wherever it is (waiting, running, or in the step now running) and frees its blocks. */
  finish(seq: Sequence, reason: FinishReason): void {
    if (seq.status === 'finished') return;
    removeFrom(seq.status === 'running' ? this.running : this.waiting, seq);
    this.blockManager.free(seq);
    seq.status = 'finished';
    seq.finishReason = reason;
  }

  /** One pass over running sequences: decodes (prefills === false) or partway prefills (true). */
  private scheduleRunning(out: SchedulerOutput, prefills: boolean): void {
    for (let i = 0; i < this.running.length; i++) {
      const budget = this.maxNumBatchedTokens - out.numBatchedTokens;
      if (budget <= 0) return;
      const seq = this.running[i]!;
      if (seq.scheduledStep === out.step || seq.isPrefill !== prefills) continue;
      const remaining = seq.numTokens - seq.numComputedTokens;
      const numNew = Math.min(remaining, budget);
      if (numNew < remaining && !this.enableChunkedPrefill) continue;
      while (!this.blockManager.canAllocate(seq, numNew)) {
        const victim = this.newestUnscheduled(out.step);
        const at = this.preempt(victim!, out);
        if (at < i) i--;
        if (victim === seq) break;
      }
      if (seq.status !== 'running') {
        i--; // it preempted itself; the next sequence moved into slot i
        continue;
      }
      this.blockManager.allocate(seq, numNew);
      this.push(out, seq, numNew);
    }
  }

  private scheduleWaiting(out: SchedulerOutput): void {
    for (let j = 0; j < this.waiting.length && this.running.length < this.maxNumSeqs; ) {
      const budget = this.maxNumBatchedTokens - out.numBatchedTokens;
      if (budget <= 0) return;
      const seq = this.waiting[j]!;
      if (!this.isReady(seq)) {
        j++; // a sample waiting for its parent's prompt blocks; later arrivals may go ahead
        continue;
      }
      // Prompt logprobs need logits at every prompt position: no prefix hits, and the prompt in one step.
      const whole = seq.promptLogprobsPending;
      const hitBlocks = whole ? 0 : this.blockManager.lookupPrefix(seq);
      const remaining = seq.numTokens - hitBlocks * this.blockManager.blockSize;
      const numNew = Math.min(remaining, budget);
      if (numNew < remaining && (!this.enableChunkedPrefill || whole)) return;
      // First come, first served: when the head does not fit, nobody behind it jumps the queue.
      if (!this.blockManager.allocate(seq, numNew, hitBlocks)) return;
      this.blockManager.recordAdmission(seq, hitBlocks);
      seq.numCachedTokens = hitBlocks * this.blockManager.blockSize;
      this.waiting.splice(j, 1);
      seq.status = 'running';
      this.running.push(seq);
      this.push(out, seq, numNew);
    }
  }

  /**
   * A sample of an n > 1 request is admitted once sample 0 has computed the prompt's full blocks, so
   * it shares them instead of computing them again; resumed or orphaned samples go as they are.
   */
  private isReady(seq: Sequence): boolean {
    const parent = seq.parent;
    if (!parent || parent.status === 'finished' || seq.numOutputTokens > 0) return true;
    const shareable = Math.floor((seq.promptLen - 1) / this.blockManager.blockSize) * this.blockManager.blockSize;
    return parent.status === 'running' && parent.numComputedTokens >= shareable;
  }

  private newestUnscheduled(step: number): Sequence | undefined {
    for (let i = this.running.length - 1; i >= 0; i--) {
      if (this.running[i]!.scheduledStep !== step) return this.running[i];
    }
    return undefined;
  }

  /** Preempts by recompute; returns the index it had in `running`. */
  private preempt(seq: Sequence, out: SchedulerOutput): number {
    const at = this.running.indexOf(seq);
    if (at < 0) throw new Error(`assertion: preempting sequence ${seq.seqId} that is not running`);
    this.running.splice(at, 1);
    this.blockManager.free(seq);
    seq.status = 'preempted';
    seq.numPreemptions++;
    this.numPreemptions++;
    this.waiting.unshift(seq);
    out.preempted.push(seq);
    return at;
  }

  private push(out: SchedulerOutput, seq: Sequence, numNew: number): void {
    seq.scheduledStep = out.step;
    out.seqs.push(seq);
    out.numNewTokens.push(numNew);
    out.numBatchedTokens += numNew;
  }
}

function removeFrom(list: Sequence[], seq: Sequence): void {
  const at = list.indexOf(seq);
  if (at >= 0) list.splice(at, 1);
}
