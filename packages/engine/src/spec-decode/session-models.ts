/**
 * Speculative decoding split across two actors: a SessionDrafter (draft model) and a
 * SessionVerifier (target model), each keeping per-request KV between rounds. Every call carries the
 * request's full token ids, and each side keeps the K/V of the longest prefix that still matches and
 * recomputes the rest, so a call routed to a replica that lost (or never had) the request's state is
 * slower, never wrong. Calls on one model run one at a time (the native model steps one batch at once).
 */
import { BlockManager } from '../block-manager.js';
import { BlockPool } from '../block-pool.js';
import { KvCapacityError } from '../errors.js';
import { ModelRunner } from '../model-runner.js';
import type { NativeDraftProbs, NativeModel, NativeStepBatch } from '../native/native-types.js';
import type { ResolvedSamplingParams } from '../sampling-params.js';
import type { SchedulerOutput } from '../scheduler.js';
import { Sequence } from '../sequence.js';
import { DraftProposer } from './draft-proposer.js';
import { isPlainGreedy, verifyArgmax, verifyRows } from '../sample/verify-rows.js';
import type { VerifyResult } from '../sample/rejection-sampler.js';

export interface SessionModelOptions {
  /** Longest sequence served. Default the model's maxSeqLen. */
  maxModelLen?: number;
  /** Most tokens one forward carries (the model must be loaded with at least this). Default 2048. */
  maxNumBatchedTokens?: number;
}

export interface SessionCall {
  requestId: string;
  /** Prompt and accepted output so far. */
  tokenIds: readonly number[];
  params: ResolvedSamplingParams;
  /** Seed of the request's draws (uint32). */
  seed: number;
}

/** Serialises async calls on one model. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => {});
    return next;
  }
}

/** Mirrors a request's token ids into a Sequence of room enough for the rest of the context. */
function mirror(
  seqs: Map<string, Sequence>,
  call: SessionCall,
  maxModelLen: number,
  blockSize: number,
  nextId: () => number,
): Sequence {
  let seq = seqs.get(call.requestId);
  if (!seq || call.tokenIds.length < seq.promptLen) {
    const promptLen = call.tokenIds.length;
    seq = new Sequence({
      seqId: nextId(),
      requestId: call.requestId,
      index: 0,
      promptTokenIds: call.tokenIds,
      params: { ...call.params, maxTokens: Math.max(1, maxModelLen - promptLen) },
      seed: call.seed,
      stopTokenIds: [],
      blockSize,
    });
    seq.status = 'running';
    seqs.set(call.requestId, seq);
  }
  if (call.tokenIds.length > seq.tokenIds.length)
    throw new KvCapacityError(`request ${call.requestId} exceeds the context of ${maxModelLen} tokens`);
  return seq;
}

export class SessionDrafter {
  private readonly proposer: DraftProposer;
  private readonly targets = new Map<string, Sequence>();
  private readonly mutex = new Mutex();
  private readonly maxModelLen: number;
  private readonly blockSize: number;
  private nextId = 0;

  constructor(model: NativeModel, opts: SessionModelOptions = {}) {
    this.maxModelLen = Math.min(opts.maxModelLen ?? model.config.maxSeqLen, model.config.maxSeqLen);
    this.blockSize = model.blockSize;
    this.proposer = new DraftProposer(model, {
      maxNumBatchedTokens: opts.maxNumBatchedTokens ?? 2048,
      maxNumSeqs: 1,
      maxModelLen: this.maxModelLen,
    });
  }

  /** Up to k proposed tokens after call.tokenIds, with the draft distributions when the request samples. */
  propose(call: SessionCall, k: number): Promise<{ tokens: number[]; q: Float64Array[] | null }> {
    return this.mutex.run(async () => {
      const target = mirror(this.targets, call, this.maxModelLen, this.blockSize, () => this.nextId++);
      // A call may replace tokens of the last one, not only extend them (a pipeline that proposed ahead
      // on a guess that failed): the draft recomputes from the first changed token.
      const n = Math.min(target.numTokens, call.tokenIds.length);
      let same = target.promptLen;
      while (same < n && target.tokenIds[same] === call.tokenIds[same]) same++;
      if (same < target.numTokens) this.proposer.unsync(target, same);
      for (let i = target.promptLen; i < call.tokenIds.length; i++) target.tokenIds[i] = call.tokenIds[i]!;
      target.numTokens = call.tokenIds.length;
      const room = Math.min(k, this.maxModelLen - target.numTokens);
      if (room <= 0) return { tokens: [], q: null };
      return (await this.proposer.propose([{ seq: target, k: room }]))[0]!;
    });
  }

  /** Forgets a request (its draft KV is freed at the next call). */
  release(requestId: string): void {
    const t = this.targets.get(requestId);
    if (t) t.status = 'finished';
    this.targets.delete(requestId);
  }

  get numSessions(): number {
    return this.targets.size;
  }
}

export class SessionVerifier {
  private readonly model: NativeModel;
  private readonly blockManager: BlockManager;
  private readonly runner: ModelRunner;
  private readonly seqs = new Map<string, Sequence>();
  private readonly mutex = new Mutex();
  private readonly maxModelLen: number;
  private readonly maxNumBatchedTokens: number;
  private nextId = 0;
  private step = 0;

  constructor(model: NativeModel, opts: SessionModelOptions = {}) {
    this.model = model;
    this.maxModelLen = Math.min(opts.maxModelLen ?? model.config.maxSeqLen, model.config.maxSeqLen);
    this.maxNumBatchedTokens = opts.maxNumBatchedTokens ?? 2048;
    this.blockManager = new BlockManager(new BlockPool(model.numBlocks, model.blockSize), false);
    this.runner = new ModelRunner(model, {
      blockSize: model.blockSize,
      maxNumBatchedTokens: this.maxNumBatchedTokens,
      maxNumSeqs: 1,
      maxModelLen: this.maxModelLen,
    });
  }

  /**
   * Scores call.tokenIds + proposals in one forward (K/V of the matching prefix reused) and returns
   * the accepted proposals plus one corrected or bonus token. `q` as from SessionDrafter.propose.
   */
  verify(call: SessionCall, proposals: readonly number[], q: readonly Float64Array[] | null): Promise<VerifyResult> {
    return this.mutex.run(async () => {
      const seq = mirror(this.seqs, call, this.maxModelLen, this.blockManager.blockSize, () => this.nextId++);
      const k = Math.max(
        0,
        Math.min(proposals.length, seq.tokenIds.length - call.tokenIds.length, this.maxModelLen - call.tokenIds.length),
      );
      this.sync(seq, call.tokenIds);
      for (let i = 0; i < k; i++) seq.appendToken(proposals[i]!);
      const numNew = seq.numTokens - seq.numComputedTokens;
      if (numNew > this.maxNumBatchedTokens || !this.blockManager.allocate(seq, numNew)) {
        this.release(call.requestId);
        throw new KvCapacityError(
          `the target's KV pool cannot hold request ${call.requestId} (${seq.numTokens} tokens)`,
        );
      }
      const so: SchedulerOutput = {
        step: ++this.step,
        seqs: [seq],
        numNewTokens: [numNew],
        numBatchedTokens: numNew,
        preempted: [],
      };
      this.runner.invalidate(); // rollbacks may reuse block-table slots; one row, so rewriting it is free
      const batch = this.runner.prepare(so);
      const prop = k > 0 ? { tokens: proposals.slice(0, k), q: q ? q.slice(0, k) : null } : null;
      const res = this.model.verify
        ? await this.verifyNative(batch, k, prop?.q ?? null)
        : this.model.argmax && isPlainGreedy(seq)
          ? verifyArgmax(await this.model.argmax(batch, Int32Array.of(k + 1)), prop)
          : verifyRows(seq, await this.rows(batch, k + 1), prop);
      // Valid K/V: every token before the proposals and the accepted proposals; the rest rolls back.
      const kept = seq.numTokens - k + res.numAccepted;
      this.blockManager.rollback(seq, kept);
      seq.truncate(kept);
      return { tokens: res.tokens, numAccepted: res.numAccepted };
    });
  }

  /** NativeModel.verify() of the batch's one sequence and its k proposals (the same tokens as verifyRows). */
  private async verifyNative(
    batch: NativeStepBatch,
    k: number,
    q: readonly Float64Array[] | null,
  ): Promise<VerifyResult> {
    const V = this.model.config.vocabSize;
    let draft: NativeDraftProbs | null = null;
    if (q && q.length > 0 && k > 0) {
      const probs = new Float64Array(k * V);
      for (let i = 0; i < k; i++) probs.set(q[i]!, i * V);
      draft = { probs, rows: Int32Array.of(0) };
    }
    const res = await this.model.verify!(batch, Int32Array.of(k + 1), draft, this.runner.verifyOutput);
    const numAccepted = res.numAccepted[0]!;
    return { tokens: Array.from(res.tokens.subarray(0, numAccepted + 1)), numAccepted };
  }

  /** The last n logit rows of the batch's one sequence. */
  private async rows(batch: NativeStepBatch, n: number): Promise<Float32Array[]> {
    const logits = await this.model.logits(batch, Int32Array.of(n));
    const V = this.model.config.vocabSize;
    return Array.from({ length: n }, (_, j) => logits.subarray(j * V, (j + 1) * V));
  }

  release(requestId: string): void {
    const seq = this.seqs.get(requestId);
    if (!seq) return;
    this.blockManager.free(seq);
    this.seqs.delete(requestId);
  }

  get numSessions(): number {
    return this.seqs.size;
  }

  /** Makes seq's tokens equal to `tokenIds`, keeping K/V of the prefix that still matches. */
  private sync(seq: Sequence, tokenIds: readonly number[]): void {
    let common = 0;
    const limit = Math.min(seq.numTokens, tokenIds.length, seq.numComputedTokens);
    while (common < limit && seq.tokenIds[common] === tokenIds[common]) common++;
    this.blockManager.rollback(seq, Math.min(common, tokenIds.length - 1));
    seq.numTokens = seq.numComputedTokens;
    while (seq.numTokens < tokenIds.length) seq.appendToken(tokenIds[seq.numTokens]!);
  }
}
