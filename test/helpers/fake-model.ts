/**
 * A fake LoadedModel for testing LLMEngine without the native addon. Its "KV cache" stores the token
 * id written to each slot, and a sampled token depends on every token read back through the block
 * table, plus (seed, position) when temperature > 0 — so a wrong slot mapping, block table or prefix
 * hit changes the output, just as it would with a real model. A logit bias acts at its extremes, as
 * it does on a real model's logits: a bias >= 50 forces its token (the largest such bias wins), one
 * <= -50 (or -inf, a min_tokens ban) moves the pick to the next id that is not banned.
 */
import type { LoadedModel } from '../../packages/engine/src/model-loader/load-model.js';
import type { ModelSpec } from '../../packages/engine/src/model-loader/model-spec.js';
import type {
  NativeModel,
  NativeModelConfig,
  NativeStepBatch,
  NativeStepResult,
} from '../../packages/engine/src/native/native-types.js';
import type { Tokenizer } from '../../packages/engine/src/tokenizer/tokenizer.js';

const enc = new TextEncoder();
/** 0 <unk>, 1 BOS, 2 EOS; 3..28 'a'..'z'; 29..54 ' a'..' z'; 55 '\n'; 56, 57 the bytes of 'é'; 58 '.'; 59..63 ' the', ' cat', ' sat', ' on', ' mat'. */
function pieceOf(id: number): Uint8Array {
  if (id < 3) return new Uint8Array(0);
  if (id < 29) return enc.encode(String.fromCharCode(94 + id));
  if (id < 55) return enc.encode(` ${String.fromCharCode(68 + id)}`);
  if (id === 55) return enc.encode('\n');
  if (id === 56) return Uint8Array.of(0xc3);
  if (id === 57) return Uint8Array.of(0xa9);
  if (id === 58) return enc.encode('.');
  return enc.encode([' the', ' cat', ' sat', ' on', ' mat'][id - 59]!);
}

export const fakeTokenizer: Tokenizer = {
  vocabSize: 64,
  bosId: 1,
  eosId: 2,
  stripsLeadingSpace: false,
  isSpecial: (id) => id < 3,
  tokenBytes: pieceOf,
  encode(text, options) {
    const ids: number[] = options?.addBos === false ? [] : [1];
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      const next = text[i + 1];
      if (c === ' ' && next && next >= 'a' && next <= 'z') {
        ids.push(next.charCodeAt(0) - 68);
        i++;
      } else if (c >= 'a' && c <= 'z') ids.push(c.charCodeAt(0) - 94);
      else if (c === '\n') ids.push(55);
      else if (c === '.') ids.push(58);
      else ids.push(0);
    }
    return ids;
  },
  decode(ids) {
    const parts: number[] = [];
    for (const id of Array.from(ids)) parts.push(...pieceOf(id));
    return new TextDecoder().decode(Uint8Array.from(parts));
  },
};

export interface FakeModelOptions {
  numBlocks?: number;
  blockSize?: number;
  maxSeqLen?: number;
  /** 1 in eosEvery greedy draws is EOS. Default 40. */
  eosEvery?: number;
  /** Throw from step() when this returns true. */
  failWhen?: (batch: NativeStepBatch) => boolean;
}

export function makeFakeModel(opts: FakeModelOptions = {}): LoadedModel & { steps: number; maxSeqsInStep: number } {
  const blockSize = opts.blockSize ?? 16;
  const numBlocks = opts.numBlocks ?? 256;
  const eosEvery = opts.eosEvery ?? 40;
  const config: NativeModelConfig = {
    dim: 8,
    hiddenDim: 16,
    nLayers: 1,
    nHeads: 1,
    nKvHeads: 1,
    vocabSize: 64,
    maxSeqLen: opts.maxSeqLen ?? 512,
    ropeTheta: 10000,
    ropeLayout: 'interleaved',
    normEps: 1e-5,
    tiedEmbeddings: true,
  };
  const kv = new Int32Array(numBlocks * blockSize).fill(-1);
  let disposed = false;
  const model: NativeModel = {
    config,
    blockSize,
    numBlocks,
    kvDtype: 'f32',
    backend: 'fake',
    kernels: 'fake',
    weightBytes: 0,
    numThreads: 1,
    async step(batch) {
      if (disposed) throw Object.assign(new Error('disposed'), { code: 'E_DISPOSED' });
      if (opts.failWhen?.(batch)) throw Object.assign(new Error('fake failure'), { code: 'E_BATCH' });
      const result = runStep(batch, kv, blockSize, eosEvery);
      self.steps++;
      self.maxSeqsInStep = Math.max(self.maxSeqsInStep, batch.numSeqs);
      await new Promise((r) => setImmediate(r));
      return result;
    },
    async logits() {
      throw new Error('not faked');
    },
    dispose() {
      disposed = true;
    },
  };
  const spec = {
    format: 'llama2c',
    path: '/fake',
    config,
    files: [],
    tensors: [],
    tokenizer: fakeTokenizer,
    bosId: 1,
    eosId: 2,
    stopTokenIds: [2],
    modelName: 'fake',
  } as ModelSpec;
  const self = {
    spec,
    model,
    tokenizer: fakeTokenizer,
    steps: 0,
    maxSeqsInStep: 0,
    dispose: () => model.dispose(),
    [Symbol.asyncDispose]: async () => model.dispose(),
  };
  return self;
}

/** The token the fake picks after sequence s's logit bias (see the header). */
function biased(b: NativeStepBatch, s: number, token: number): number {
  if (!b.biasOffsets) return token;
  const banned = new Set<number>();
  let forced = -1;
  let best = 50;
  for (let i = b.biasOffsets[s]!; i < b.biasOffsets[s + 1]!; i++) {
    const id = b.biasTokens![i]!,
      v = b.biasValues![i]!;
    if (v <= -50) banned.add(id);
    if (v >= best) [forced, best] = [id, v];
  }
  if (forced >= 0) return forced;
  while (banned.has(token)) token = 3 + ((token - 2) % 61); // 2 -> 3, 3 -> 4, ..., 63 -> 3
  return token;
}

function runStep(b: NativeStepBatch, kv: Int32Array, bs: number, eosEvery: number): NativeStepResult {
  const S = b.numSeqs;
  for (let t = 0; t < b.numTokens; t++) kv[b.slotMapping[t]!] = b.tokenIds[t]!;
  const tokens = new Int32Array(S).fill(-1);
  const logprobs = new Float32Array(S);
  const topK = Math.max(0, ...Array.from(b.numLogprobs.subarray(0, S)));
  const topIds = new Int32Array(S * topK);
  const topLogprobs = new Float32Array(S * topK);
  for (let s = 0; s < S; s++) {
    const ctx = b.contextLens[s]!;
    const lastPos = b.positions[b.queryStartLoc[s + 1]! - 1]!;
    if (lastPos !== ctx - 1) throw new Error(`fake: last row of sequence ${s} is position ${lastPos}, context ${ctx}`);
    if (!b.sampleMask[s]) continue;
    let h = 0x811c9dc5;
    for (let p = 0; p < ctx; p++) {
      const tok = kv[b.blockTables[s * b.maxBlocksPerSeq + ((p / bs) | 0)]! * bs + (p % bs)]!;
      if (tok < 0) throw new Error(`fake: sequence ${s} reads an unwritten slot at position ${p}`);
      h = Math.imul(h ^ tok, 0x01000193);
    }
    if (b.temperature[s]! > 0) h = Math.imul(h ^ b.seeds[s]!, 0x9e3779b1) ^ Math.imul(ctx, 0x85ebca6b);
    h >>>= 0;
    tokens[s] = biased(b, s, h % eosEvery === 0 ? 2 : 3 + (h % 61));
    logprobs[s] = -((h % 100) / 10);
    for (let j = 0; j < b.numLogprobs[s]!; j++) {
      topIds[s * topK + j] = (tokens[s]! + j) % 64;
      topLogprobs[s * topK + j] = -j;
    }
  }
  return { tokens, logprobs, topK, topIds, topLogprobs };
}
