/**
 * Shared by the native-*.test.ts files: a llama2.c manifest reader (so these tests do not depend on
 * the model-loader package), and a tiny sequence runner that fills NativeStepBatch arrays (allocated by
 * the engine's allocateStepBatch) the way the scheduler does — blocks per sequence, slot mapping,
 * chunked prefill — for greedy or sampled runs.
 */
import { readFileSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import type {
  NativeLoadOptions,
  NativeModel,
  NativeStepBatch,
  NativeTensorSpec,
} from '../../packages/engine/src/native/native-types.js';
import { allocateStepBatch } from '../../packages/engine/src/native/step-batch-buffers.js';
import { models } from '../helpers/models.js';

/** NativeLoadOptions for a llama2.c checkpoint (legacy v0 layout, see test/fixtures/models/README.md). */
export function llama2cManifest(file: string): NativeLoadOptions {
  const fd = openSync(file, 'r');
  const head = Buffer.alloc(28);
  readSync(fd, head, 0, 28, 0);
  closeSync(fd);
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabRaw, maxSeqLen] = Array.from({ length: 7 }, (_, i) =>
    head.readInt32LE(4 * i),
  );
  const vocabSize = Math.abs(vocabRaw);
  const headDim = dim / nHeads,
    kvDim = headDim * nKvHeads;
  const tensors: NativeTensorSpec[] = [];
  let offset = 28;
  const add = (name: string, shape: number[]) => {
    tensors.push({ name, file: 0, offset, dtype: 'f32', shape });
    offset += shape.reduce((a, b) => a * b, 1) * 4;
  };
  const perLayer = (name: string, shape: number[]) => {
    for (let l = 0; l < nLayers; l++) add(`layers.${l}.${name}`, shape);
  };
  add('tok_embeddings', [vocabSize, dim]);
  perLayer('attention_norm', [dim]);
  perLayer('wq', [dim, dim]);
  perLayer('wk', [kvDim, dim]);
  perLayer('wv', [kvDim, dim]);
  perLayer('wo', [dim, dim]);
  perLayer('ffn_norm', [dim]);
  perLayer('w1', [hiddenDim, dim]);
  perLayer('w2', [dim, hiddenDim]);
  perLayer('w3', [hiddenDim, dim]);
  add('norm', [dim]);
  offset += maxSeqLen * headDim * 4; // the two unused RoPE tables
  if (vocabRaw < 0) add('output', [vocabSize, dim]);
  if (offset > statSync(file).size) throw new Error(`${file}: truncated`);
  return {
    config: {
      dim,
      hiddenDim,
      nLayers,
      nHeads,
      nKvHeads,
      vocabSize,
      maxSeqLen,
      ropeTheta: 10000,
      ropeLayout: 'interleaved',
      normEps: 1e-5,
      tiedEmbeddings: vocabRaw > 0,
    },
    files: [file],
    tensors,
  };
}

export interface Goldens {
  greedy_from_bos_48: number[];
  logits_check_on_first_9_tokens: { position: number; top5_ids: number[]; top5_logits: number[] }[];
}
export function goldens(model: 'stories260K' | 'llama2xs-260K'): Goldens {
  return JSON.parse(readFileSync(models.goldens, 'utf8'))[model];
}

export interface SamplingOptions {
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  seed?: number;
  repetitionPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  numLogprobs?: number;
}

/** One sequence: its tokens (prompt then generated), how many are in the KV cache, its blocks. */
export class Seq {
  computed = 0;
  blocks: number[] = [];
  readonly promptLen: number;
  logprobs: number[] = [];
  constructor(
    public tokens: number[],
    public sampling: SamplingOptions = {},
  ) {
    this.promptLen = tokens.length;
  }
  get generated(): number[] {
    return this.tokens.slice(this.promptLen);
  }
}

/** Hands out KV blocks, never reusing one (tests are short). */
export class Blocks {
  private next = 0;
  constructor(private readonly model: NativeModel) {}
  ensure(seq: Seq, len: number): void {
    while (seq.blocks.length * this.model.blockSize < len) {
      if (this.next >= this.model.numBlocks) throw new Error('test ran out of KV blocks');
      seq.blocks.push(this.next++);
    }
  }
}

export interface Work {
  seq: Seq;
  n: number; // tokens of this step
}

/** The flat batch for one step over `work` (each seq's next n uncomputed tokens). */
export function buildBatch(model: NativeModel, blocks: Blocks, work: Work[]): NativeStepBatch {
  const S = work.length,
    T = work.reduce((a, w) => a + w.n, 0),
    bs = model.blockSize;
  for (const w of work) blocks.ensure(w.seq, w.seq.computed + w.n);
  const maxBlocksPerSeq = Math.max(...work.map((w) => w.seq.blocks.length));
  // The engine's preallocated arrays, sized for exactly this step (maxModelLen gives maxBlocksPerSeq).
  const b = allocateStepBatch({
    maxNumBatchedTokens: T,
    maxNumSeqs: S,
    maxModelLen: maxBlocksPerSeq * bs,
    blockSize: bs,
  });
  b.numSeqs = S;
  b.numTokens = T;
  b.penaltyTokens = new Int32Array(work.reduce((a, w) => a + w.seq.computed + w.n, 0));
  let t = 0,
    p = 0;
  work.forEach(({ seq, n }, s) => {
    b.queryStartLoc[s] = t;
    for (let i = 0; i < n; i++, t++) {
      const pos = seq.computed + i;
      b.tokenIds[t] = seq.tokens[pos];
      b.positions[t] = pos;
      b.slotMapping[t] = seq.blocks[Math.floor(pos / bs)] * bs + (pos % bs);
    }
    b.queryStartLoc[s + 1] = t;
    b.contextLens[s] = seq.computed + n;
    b.blockTables.set(seq.blocks, s * maxBlocksPerSeq);
    b.sampleMask[s] = seq.computed + n === seq.tokens.length ? 1 : 0;
    const o = seq.sampling;
    b.temperature[s] = o.temperature ?? 0;
    b.topK[s] = o.topK ?? 0;
    b.topP[s] = o.topP ?? 1;
    b.minP[s] = o.minP ?? 0;
    b.repetitionPenalty[s] = o.repetitionPenalty ?? 1;
    b.presencePenalty[s] = o.presencePenalty ?? 0;
    b.frequencyPenalty[s] = o.frequencyPenalty ?? 0;
    b.seeds[s] = o.seed ?? 0;
    b.numLogprobs[s] = o.numLogprobs ?? 0;
    b.penaltyOffsets[s] = p;
    const ctx = seq.tokens.slice(0, seq.computed + n);
    b.penaltyTokens.set(ctx, p);
    p += ctx.length;
    b.penaltyPromptLens[s] = Math.min(seq.promptLen, ctx.length);
  });
  b.penaltyOffsets[S] = p;
  return b;
}

/**
 * Runs every sequence until it has `maxNew` generated tokens, all in the same steps; prefills are cut
 * into chunks of `chunk` tokens (or chunkOf(seq) to vary it per sequence).
 */
export async function generate(
  model: NativeModel,
  seqs: Seq[],
  maxNew: number,
  chunk: number | ((s: Seq) => number) = 1 << 30,
): Promise<void> {
  const blocks = new Blocks(model);
  for (;;) {
    const work = seqs
      .filter((s) => s.generated.length < maxNew)
      .map((seq) => ({
        seq,
        n: Math.min(typeof chunk === 'number' ? chunk : chunk(seq), seq.tokens.length - seq.computed),
      }));
    if (work.length === 0) return;
    const r = await model.step(buildBatch(model, blocks, work));
    work.forEach(({ seq, n }, s) => {
      seq.computed += n;
      if (seq.computed === seq.tokens.length) {
        seq.tokens.push(r.tokens[s]);
        seq.logprobs.push(r.logprobs[s]);
      }
    });
  }
}

/** Logits (T, vocab) of every position of a single-sequence prefill over `tokens`. */
export async function prefillLogits(model: NativeModel, tokens: number[]): Promise<Float32Array[]> {
  const seq = new Seq(tokens);
  const batch = buildBatch(model, new Blocks(model), [{ seq, n: tokens.length }]);
  const flat = await model.logits(batch, Int32Array.from([tokens.length]));
  const V = model.config.vocabSize;
  return tokens.map((_, i) => flat.subarray(i * V, (i + 1) * V));
}

export function topK(row: Float32Array, k: number): number[] {
  return Array.from(row.keys())
    .sort((a, b) => row[b] - row[a] || a - b)
    .slice(0, k);
}

export function logSoftmax(row: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of row) m = Math.max(m, v);
  let s = 0;
  for (const v of row) s += Math.exp(v - m);
  const lse = m + Math.log(s);
  return Float64Array.from(row, (v) => v - lse);
}
