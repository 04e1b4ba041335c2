/**
 * Turns a SchedulerOutput into the native step's flat arrays (NativeStepBatch) and runs it.
 *
 * Every array is allocated once for the largest step (maxNumBatchedTokens tokens, maxNumSeqs rows)
 * and reused. A batch row keeps the same sequence from step to step while the running set is stable
 * (decodes come first, in admission order), so per-row data — the block-table row, the sampling
 * parameters, the seed — is rewritten only when the row's occupant changed; a block-table row then
 * only gets the blocks appended since the last step.
 *
 * Results land in arrays allocated here once as well: execute() hands the native step `output`, which
 * it fills directly (no copy), and speculative steps hand verify() `verifyOutput`. A step's result
 * arrays are views of them, so they hold until the next step of this runner.
 */
import { MaskPacker } from './guided/token-mask.js';
import { logitBiasSize, writeLogitBias } from './logit-bias.js';
import type { NativeStepBatch, NativeStepOutput, NativeStepResult, NativeVerifyOutput } from './native/native-types.js';
import { allocateStepBatch } from './native/step-batch-buffers.js';
import { MAX_LOGPROBS } from './sampling-params.js';
import type { SchedulerOutput } from './scheduler.js';
import type { Sequence } from './sequence.js';

/** The part of NativeModel the runner calls (a fake in unit tests). */
export interface StepModel {
  step(batch: NativeStepBatch, out?: NativeStepOutput): Promise<NativeStepResult>;
}

export interface ModelRunnerOptions {
  blockSize: number;
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
  /** Longest sequence served; sizes the block-table rows. */
  maxModelLen: number;
}

export class ModelRunner {
  readonly batch: NativeStepBatch;
  /** Where execute()'s native step writes: (maxNumSeqs) tokens and logprobs, (maxNumSeqs × MAX_LOGPROBS) tops. */
  readonly output: NativeStepOutput;
  /** Where a speculative step's verify() writes: (maxNumBatchedTokens) tokens, (maxNumSeqs) accepted counts. */
  readonly verifyOutput: NativeVerifyOutput;
  private readonly model: StepModel;
  private readonly blockSize: number;
  /** (maxNumSeqs) seqId and preemption count of each row's occupant at the last step; -1 = none. */
  private readonly rowSeqId: Int32Array;
  private readonly rowEpoch: Int32Array;
  /** (maxNumSeqs) block-table entries of the row that are current. */
  private readonly rowBlocks: Int32Array;
  /** Logit bias of the step (S+1 offsets; entries grown on demand), handed over only in steps that have any. */
  private readonly biasOffsets: Int32Array;
  private biasTokens = new Int32Array(0);
  private biasValues = new Float32Array(0);
  /** (maxNumSeqs) LoRA slot per row, handed over only in steps where some sequence has an adapter. */
  private readonly loraSlots: Int32Array;
  /** Allowed-token masks of the step's guided sequences; made at the first guided step. */
  private masks: MaskPacker | null = null;

  constructor(model: StepModel, opts: ModelRunnerOptions) {
    this.model = model;
    this.blockSize = opts.blockSize;
    const T = opts.maxNumBatchedTokens;
    const S = opts.maxNumSeqs;
    this.rowSeqId = new Int32Array(S).fill(-1);
    this.rowEpoch = new Int32Array(S);
    this.rowBlocks = new Int32Array(S);
    this.batch = allocateStepBatch(opts);
    this.biasOffsets = new Int32Array(S + 1);
    this.loraSlots = new Int32Array(S);
    this.output = {
      tokens: new Int32Array(S),
      logprobs: new Float32Array(S),
      topIds: new Int32Array(S * MAX_LOGPROBS),
      topLogprobs: new Float32Array(S * MAX_LOGPROBS),
    };
    this.verifyOutput = { tokens: new Int32Array(T), numAccepted: new Int32Array(S) };
  }

  /** Fills the batch for `out` and runs one native step; the result's arrays are views of this.output. */
  execute(out: SchedulerOutput): Promise<NativeStepResult> {
    return this.model.step(this.prepare(out), this.output);
  }

  /** Writes `out` into the preallocated arrays; the returned batch is this.batch. */
  prepare(out: SchedulerOutput): NativeStepBatch {
    const b = this.batch;
    const S = out.seqs.length;
    if (S > this.rowSeqId.length || out.numBatchedTokens > b.tokenIds.length) {
      throw new Error(`assertion: step of ${S} sequences / ${out.numBatchedTokens} tokens exceeds the runner's arrays`);
    }
    b.numSeqs = S;
    b.numTokens = out.numBatchedTokens;
    this.ensurePenaltyRoom(out);
    let t = 0;
    let p = 0;
    for (let s = 0; s < S; s++) {
      const seq = out.seqs[s]!;
      const n = out.numNewTokens[s]!;
      b.queryStartLoc[s] = t;
      t = this.writeTokens(seq, n, t);
      const end = seq.numComputedTokens + n;
      b.contextLens[s] = end;
      b.sampleMask[s] = end === seq.numTokens ? 1 : 0;
      this.writeRow(s, seq);
      b.penaltyOffsets[s] = p;
      p = this.writePenaltyTokens(s, seq, p);
    }
    b.queryStartLoc[S] = t;
    b.penaltyOffsets[S] = p;
    this.writeBias(out);
    this.writeMasks(out);
    this.writeLoraSlots(out);
    return b;
  }

  /** Each row's LoRA slot, or none: the array goes to the native step only when some sequence has an adapter. */
  private writeLoraSlots(out: SchedulerOutput): void {
    let any = false;
    for (let s = 0; s < out.seqs.length; s++) {
      const slot = out.seqs[s]!.loraSlot;
      this.loraSlots[s] = slot;
      any ||= slot >= 0;
    }
    this.batch.loraSlots = any ? this.loraSlots : undefined;
  }

  /**
   * The masks of guided sequences that sample in this step (computed beforehand: GuidedMatcher.refresh),
   * or none: the arrays go to the native step only when some sequence has one.
   */
  private writeMasks(out: SchedulerOutput): void {
    const b = this.batch;
    const S = out.seqs.length;
    let packer: MaskPacker | null = null;
    for (let s = 0; s < S; s++) {
      const g = out.seqs[s]!.guided;
      if (!g || !b.sampleMask[s]) continue;
      if (!g.mask) throw new Error(`assertion: guided sequence ${out.seqs[s]!.seqId} has no mask for this step`);
      if (!packer) {
        packer = this.masks ??= new MaskPacker(g.mask.length * 32, this.rowSeqId.length);
        packer.reset(S);
      }
      packer.add(s, g.mask);
    }
    if (!packer) {
      b.tokenMask = b.tokenMaskOffsets = undefined;
      return;
    }
    b.tokenMask = packer.tokenMask;
    b.tokenMaskOffsets = packer.offsets;
  }

  /** The step's logit bias (logit-bias.ts), or none: the arrays go to the native step only when some sequence has one. */
  private writeBias(out: SchedulerOutput): void {
    const b = this.batch;
    let need = 0;
    for (const seq of out.seqs) need += logitBiasSize(seq);
    if (need === 0) {
      b.biasOffsets = b.biasTokens = b.biasValues = undefined;
      return;
    }
    if (need > this.biasTokens.length) {
      const n = Math.max(need, this.biasTokens.length * 2, 256);
      this.biasTokens = new Int32Array(n);
      this.biasValues = new Float32Array(n);
    }
    let p = 0;
    for (let s = 0; s < out.seqs.length; s++) {
      this.biasOffsets[s] = p;
      p = writeLogitBias(out.seqs[s]!, this.biasTokens, this.biasValues, p);
    }
    this.biasOffsets[out.seqs.length] = p;
    b.biasOffsets = this.biasOffsets;
    b.biasTokens = this.biasTokens;
    b.biasValues = this.biasValues;
  }

  /** Forgets which sequence held which row (after the batch arrays were handed elsewhere). */
  invalidate(): void {
    this.rowSeqId.fill(-1);
  }

  private writeTokens(seq: Sequence, n: number, t: number): number {
    const b = this.batch;
    const bs = this.blockSize;
    const start = seq.numComputedTokens;
    for (let j = 0; j < n; j++, t++) {
      const pos = start + j;
      b.tokenIds[t] = seq.tokenIds[pos]!;
      b.positions[t] = pos;
      b.slotMapping[t] = seq.blockTable[(pos / bs) | 0]! * bs + (pos % bs);
    }
    return t;
  }

  /** Block-table row and sampling parameters of row s, rewritten only where they changed. */
  private writeRow(s: number, seq: Sequence): void {
    const b = this.batch;
    const rowStart = s * b.maxBlocksPerSeq;
    let from = this.rowBlocks[s]!;
    if (this.rowSeqId[s] !== seq.seqId || this.rowEpoch[s] !== seq.numPreemptions || from > seq.numBlocks) {
      this.rowSeqId[s] = seq.seqId;
      this.rowEpoch[s] = seq.numPreemptions;
      from = 0;
      const sp = seq.params;
      b.temperature[s] = sp.temperature;
      b.topK[s] = sp.topK;
      b.topP[s] = sp.topP;
      b.minP[s] = sp.minP;
      b.repetitionPenalty[s] = sp.repetitionPenalty;
      b.presencePenalty[s] = sp.presencePenalty;
      b.frequencyPenalty[s] = sp.frequencyPenalty;
      b.seeds[s] = seq.seed;
      b.numLogprobs[s] = sp.logprobs ?? 0;
    }
    // Blocks are only ever appended while a sequence holds them, so earlier entries are still right.
    for (let i = from; i < seq.numBlocks; i++) b.blockTables[rowStart + i] = seq.blockTable[i]!;
    this.rowBlocks[s] = seq.numBlocks;
  }

  private writePenaltyTokens(s: number, seq: Sequence, p: number): number {
    const b = this.batch;
    if (!hasPenalty(seq)) {
      b.penaltyPromptLens[s] = 0;
      return p;
    }
    b.penaltyPromptLens[s] = seq.promptLen;
    for (let i = 0; i < seq.numTokens; i++) b.penaltyTokens[p++] = seq.tokenIds[i]!;
    return p;
  }

  /** Grows the penalty buffer (rarely: only sequences with penalties use it) to this step's need. */
  private ensurePenaltyRoom(out: SchedulerOutput): void {
    let need = 0;
    for (const seq of out.seqs) if (hasPenalty(seq)) need += seq.numTokens;
    if (need <= this.batch.penaltyTokens.length) return;
    this.batch.penaltyTokens = new Int32Array(Math.max(need, this.batch.penaltyTokens.length * 2, 1024));
  }
}

function hasPenalty(seq: Sequence): boolean {
  const sp = seq.params;
  return sp.repetitionPenalty !== 1 || sp.presencePenalty !== 0 || sp.frequencyPenalty !== 0;
}
