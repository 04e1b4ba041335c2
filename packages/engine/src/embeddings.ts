/**
 * Embeddings on the native engine: requests wait in an EmbeddingQueue and each engine-loop step takes as
 * many as fit (tokens, sequences, free KV blocks) into one native `embed()` call — the forward pass
 * without the classifier or sampling, each sequence's final-normed hidden rows pooled (mean, or the last
 * token) and L2-normalised natively. A sequence always carries its whole prompt in that one call, on
 * fresh blocks that are never entered in the prefix cache, so its vector depends on its own tokens only
 * (batch-invariant: the kernels give a row the same bits whatever shares the step). Blocks go back to the
 * pool as soon as the call returns.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { BlockPool } from './block-pool.js';
import { EngineDisposedError, EngineStepError } from './errors.js';
import type { ModelSpec } from './model-loader/model-spec.js';
import type { NativeEmbedPooling, NativeStepBatch } from './native/native-types.js';
import { allocateStepBatch } from './native/step-batch-buffers.js';

export type PoolingType = NativeEmbedPooling;

/** One embedding: the unit-length vector (model dim floats) and the prompt tokens it read. */
export interface EmbeddingOutput {
  embedding: Float32Array;
  promptTokens: number;
}

/** The part of NativeModel the queue calls (a fake in unit tests). */
export interface EmbedModel {
  embed?(batch: NativeStepBatch, pooling: NativeEmbedPooling, out?: Float32Array): Promise<Float32Array>;
}

export interface EmbeddingQueueOptions {
  blockSize: number;
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
  maxModelLen: number;
  /** The model's hidden size: the vectors' length. */
  dim: number;
  pooling: PoolingType;
}

interface Pending {
  tokenIds: readonly number[];
  resolve: (out: EmbeddingOutput) => void;
  reject: (err: Error) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  settled: boolean;
}

/** The error an aborted embedding request rejects with. */
export function embeddingAbortError(): Error {
  const err = new Error('the embedding request was aborted');
  err.name = 'AbortError';
  return err;
}

export class EmbeddingQueue {
  readonly pooling: PoolingType;
  readonly dim: number;
  private readonly pending: Pending[] = [];
  /** The requests of the native call in flight. */
  private inFlight: Pending[] = [];
  private readonly batch: NativeStepBatch;
  private readonly out: Float32Array;
  private readonly blocks: number[] = [];
  private readonly opts: EmbeddingQueueOptions;

  constructor(
    private readonly model: EmbedModel,
    private readonly pool: BlockPool,
    opts: EmbeddingQueueOptions,
  ) {
    this.opts = opts;
    this.pooling = opts.pooling;
    this.dim = opts.dim;
    const S = opts.maxNumSeqs;
    // Sampling fields are required by the native batch but ignored by embed(): neutral values, written once.
    this.batch = allocateStepBatch(opts);
    this.batch.topP.fill(1);
    this.batch.repetitionPenalty.fill(1);
    this.out = new Float32Array(S * opts.dim);
  }

  /** The longest prompt one embedding may have: it runs whole in one step. */
  get maxPromptTokens(): number {
    return Math.min(this.opts.maxModelLen, this.opts.maxNumBatchedTokens, this.pool.numBlocks * this.opts.blockSize);
  }

  get hasWork(): boolean {
    return this.pending.length > 0;
  }

  get numWaiting(): number {
    return this.pending.length;
  }

  /** Queues one checked prompt (1..maxPromptTokens ids in the vocabulary); settles after the step that embeds it. */
  add(tokenIds: readonly number[], signal?: AbortSignal): Promise<EmbeddingOutput> {
    if (tokenIds.length === 0 || tokenIds.length > this.maxPromptTokens)
      throw new Error(`assertion: embedding prompt of ${tokenIds.length} tokens`);
    return new Promise<EmbeddingOutput>((resolve, reject) => {
      const p: Pending = { tokenIds, resolve, reject, signal, onAbort: undefined, settled: false };
      if (signal?.aborted) {
        reject(embeddingAbortError());
        return;
      }
      if (signal) {
        p.onAbort = () => {
          const i = this.pending.indexOf(p);
          if (i >= 0) this.pending.splice(i, 1);
          reject(embeddingAbortError());
        };
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.pending.push(p);
    });
  }

  /**
   * One native embed() over the oldest requests that fit this step, in arrival order. False when not even
   * the oldest fits (its blocks are held by running generations: a generation step must free some first).
   */
  async step(): Promise<boolean> {
    const taken = this.take();
    if (taken.length === 0) return false;
    const b = this.batch;
    const dim = this.dim;
    let result: Float32Array;
    this.inFlight = taken;
    try {
      if (!this.model.embed) throw new EngineStepError('this model has no native embed()');
      result = await this.model.embed(b, this.pooling, this.out);
    } catch (err) {
      const e =
        err instanceof EngineStepError
          ? err
          : new EngineStepError(`embedding step failed: ${(err as Error).message}`, {
              cause: (err as { code?: string }).code,
            });
      for (const p of taken) this.settle(p, null, e);
      return true;
    } finally {
      this.inFlight = [];
      for (const block of this.blocks) this.pool.release(block);
      this.blocks.length = 0;
    }
    for (let s = 0; s < taken.length; s++) {
      const p = taken[s]!;
      this.settle(p, { embedding: result.slice(s * dim, (s + 1) * dim), promptTokens: p.tokenIds.length }, null);
    }
    return true;
  }

  /** Rejects everything waiting or in flight (the engine is going). */
  failAll(err: Error = new EngineDisposedError('the engine was disposed')): void {
    for (const p of [...this.inFlight, ...this.pending.splice(0)]) this.settle(p, null, err);
  }

  /** Moves the requests of this step from `pending` into the batch arrays, taking fresh blocks for each. */
  private take(): Pending[] {
    const b = this.batch;
    const bs = this.opts.blockSize;
    const taken: Pending[] = [];
    let t = 0;
    while (this.pending.length > 0 && taken.length < this.opts.maxNumSeqs) {
      const p = this.pending[0]!;
      const n = p.tokenIds.length;
      const need = Math.ceil(n / bs);
      if (t + n > this.opts.maxNumBatchedTokens || need > this.pool.numFreeBlocks) break;
      this.pending.shift();
      if (p.signal && p.onAbort) p.signal.removeEventListener('abort', p.onAbort);
      const s = taken.length;
      const row = s * b.maxBlocksPerSeq;
      for (let i = 0; i < need; i++) {
        const block = this.pool.allocate();
        this.blocks.push(block);
        b.blockTables[row + i] = block;
      }
      b.queryStartLoc[s] = t;
      for (let j = 0; j < n; j++, t++) {
        b.tokenIds[t] = p.tokenIds[j]!;
        b.positions[t] = j;
        b.slotMapping[t] = b.blockTables[row + ((j / bs) | 0)]! * bs + (j % bs);
      }
      b.contextLens[s] = n;
      b.sampleMask[s] = 1;
      taken.push(p);
    }
    b.numSeqs = taken.length;
    b.numTokens = t;
    b.queryStartLoc[taken.length] = t;
    return taken;
  }

  private settle(p: Pending, out: EmbeddingOutput | null, err: Error | null): void {
    if (p.settled) return;
    p.settled = true;
    if (p.signal && p.onAbort) p.signal.removeEventListener('abort', p.onAbort);
    if (err) p.reject(err);
    else if (p.signal?.aborted) p.reject(embeddingAbortError());
    else p.resolve(out!);
  }
}

/**
 * The pooling a model's files ask for: a sentence-transformers directory's 1_Pooling/config.json (or the
 * pooling module named in modules.json) with pooling_mode_mean_tokens → 'mean', pooling_mode_lasttoken →
 * 'last'; otherwise 'last' (vLLM's default for decoder-only models: the last token has attended to all).
 */
export function poolingOf(spec: Pick<ModelSpec, 'path' | 'format'>): PoolingType {
  const dir = spec.format === 'safetensors' && isDir(spec.path) ? spec.path : path.dirname(spec.path);
  for (const sub of poolingDirs(dir)) {
    const file = path.join(dir, sub, 'config.json');
    if (!existsSync(file)) continue;
    try {
      const cfg = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      if (cfg.pooling_mode_lasttoken === true) return 'last';
      if (cfg.pooling_mode_mean_tokens === true) return 'mean';
    } catch {
      /* an unreadable pooling config: the default */
    }
  }
  return 'last';
}

function poolingDirs(dir: string): string[] {
  const dirs = ['1_Pooling'];
  try {
    const modules = JSON.parse(readFileSync(path.join(dir, 'modules.json'), 'utf8')) as Array<{
      type?: string;
      path?: string;
    }>;
    for (const m of modules) if (m.type?.endsWith('.Pooling') && m.path) dirs.unshift(m.path);
  } catch {
    /* no modules.json */
  }
  return dirs;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
