/**
 * The whole surface of the native addon (native/ → build/Release/flotilla_native.node), typed.
 * load-native.ts is the only module that loads the .node file; everything else imports these types.
 *
 * Split of work: TypeScript parses model files (headers, metadata, tokenizers) and hands the addon a
 * tensor manifest — where each tensor lies in which file, its dtype and shape. The addon memory-maps
 * the files, converts/quantizes weights once at load, owns the paged KV pool, and runs one coarse
 * `step()` per engine step over a flat varlen batch.
 */

/**
 * Tensor element types the addon reads from files. Q8_0 / Q4_0 are GGUF's block formats (32 per block);
 * q4_z / q8_z are the engine's int4 / int8 blocks with a zero point (f16 scale, u16 zero, 16 bytes of
 * nibbles / 32 unsigned bytes; value = scale * (q - zero)), what GPTQ/AWQ layers with zero points are
 * repacked into.
 */
export type NativeDType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_z' | 'q8_z';

/** How weights are held in memory after load. 'auto' keeps the file's type (f32 stays f32). */
export type NativeWeightFormat = 'auto' | 'f32' | 'f16' | 'bf16' | 'int8' | 'int4';

/** RoPE pairing: llama2.c and GGUF rotate interleaved pairs (i, i+1); Hugging Face rotates (i, i + headDim/2). */
export type RopeLayout = 'interleaved' | 'half';

export interface NativeModelConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  /** Longest context the model was trained for. */
  maxSeqLen: number;
  ropeTheta: number;
  ropeLayout: RopeLayout;
  normEps: number;
  /** The classifier shares the token embedding (no 'output' tensor). */
  tiedEmbeddings: boolean;
}

/**
 * One tensor in the manifest. Canonical names (i = layer):
 *   tok_embeddings (vocab, dim); norm (dim); output (vocab, dim) unless tied;
 *   layers.i.attention_norm (dim); layers.i.wq (nHeads*headDim, dim); layers.i.wk (nKvHeads*headDim, dim);
 *   layers.i.wv (nKvHeads*headDim, dim); layers.i.wo (dim, nHeads*headDim); layers.i.ffn_norm (dim);
 *   layers.i.w1 (hidden, dim) gate; layers.i.w2 (dim, hidden) down; layers.i.w3 (hidden, dim) up.
 * Shapes are row-major, outermost first, as written above.
 */
export interface NativeTensorSpec {
  name: string;
  /** Index into NativeLoadOptions.files. */
  file: number;
  /** Byte offset of the first element within the file. */
  offset: number;
  /** 'gptq' / 'awq': a packed linear layer whose parts `quant` gives (file/offset: its qweight). */
  dtype: NativeDType | 'gptq' | 'awq';
  shape: number[];
  quant?: NativePackedQuant;
}

/** One stored tensor of a GPTQ/AWQ layer, under the checkpoint's own name (used in error messages). */
export interface NativePackedPart {
  name: string;
  file: number;
  offset: number;
  dtype: 'i32' | 'f16' | 'bf16' | 'f32';
  shape: number[];
}

/**
 * A GPTQ or AWQ linear layer in the Hugging Face layouts (native/src/core/weights-gptq.h), repacked once
 * at load into int4/int8 blocks of 32: symmetric ones into q4_0 / q8_0, others into q4_z / q8_z.
 */
export interface NativePackedQuant {
  bits: 4 | 8;
  /** Inputs per group; -1: one group over all inputs (per channel). */
  groupSize: number;
  /** Added to a stored zero point: 1 for GPTQ v1 checkpoints (they store zero - 1), 0 for AWQ and gptq_v2. */
  zeroOffset?: number;
  qweight: NativePackedPart;
  qzeros: NativePackedPart;
  scales: NativePackedPart;
  /** GPTQ's g_idx (the group of each input; act order with desc_act). */
  gIdx?: NativePackedPart;
}

export interface NativeLoadOptions {
  config: NativeModelConfig;
  /** Absolute paths of the files the manifest points into; each is memory-mapped once. */
  files: string[];
  tensors: NativeTensorSpec[];
  /** Weight format held in memory; quantization happens once at load. Default 'auto'. */
  weightFormat?: NativeWeightFormat;
  /** Tokens per KV block. Default 16. */
  blockSize?: number;
  /** Bytes for the KV pool (all layers, K and V). Default 256 MiB. Ignored when numBlocks is set. */
  kvCacheBytes?: number;
  /** Exact number of KV blocks, overriding kvCacheBytes. */
  numBlocks?: number;
  /**
   * KV cache element type. 'auto' (vLLM's default: the model's dtype) is f16 for a model whose matrices
   * are held in f16, f32 otherwise (bf16 included: the pool has no bf16, and f16's range is narrower).
   * 'int8' (CPU backend) and 'fp8' (e4m3, CUDA backend; 'fp8_e4m3' too) store one byte per element
   * and an f32 scale per token and head (native/src/core/kv-type.h): about half an f16 pool's bytes.
   * Default 'auto'.
   */
  kvDtype?: 'auto' | 'f32' | 'f16' | 'int8' | 'fp8' | 'fp8_e4m3';
  /**
   * What the CPU backend's quantized matmuls (int8/int4 weights, GPTQ/AWQ checkpoints: Q8_0, Q4_0, Q4_Z,
   * Q8_Z) multiply the weights by. 'int8': activations quantized to int8 per group of 32 (VNNI integer
   * dot products; fastest, logits within ~0.1 of the dequantized model's). 'f32': the f32 activations
   * themselves against the 4/8-bit weights widened in registers (weights stay quantized in memory):
   * the dequantized model's logits up to float rounding (docs/quantized-checkpoints.md). No effect on
   * float weights. The CUDA backend refuses 'f32' (E_DEVICE). Default 'int8'.
   */
  activations?: 'int8' | 'f32';
  /** Most tokens one step may carry (sizes the preallocated activations). Default 2048. */
  maxBatchTokens?: number;
  /** Most sequences one step may carry. Default 256. */
  maxBatchSeqs?: number;
  /** Worker threads for the CPU backend. Default: number of cores. */
  numThreads?: number;
  /**
   * 'auto' picks CUDA when the addon was built with it (`hasCuda`) and a usable device (sm_80+) is
   * present, else the CPU. 'cuda' rejects with E_DEVICE when either is missing. Default 'auto'.
   */
  device?: 'auto' | 'cpu' | 'cuda';
  /**
   * CUDA only: fraction of the device's memory the engine may use in all (weights, activations
   * measured by a warm-up step, and the KV pool, which takes the rest), as vLLM's
   * gpu_memory_utilization. Used when neither numBlocks nor kvCacheBytes is given. Default 0.9.
   */
  gpuMemoryUtilization?: number;
  /**
   * LoRA adapter slots held at once (vLLM's max_loras), in a pool of their own sized for maxLoraRank on
   * every layer and module. CPU backend only (E_DEVICE on CUDA). Default 0: no adapters.
   */
  maxLoras?: number;
  /** Largest adapter rank a slot holds (vLLM's max_lora_rank). Default 16 when maxLoras > 0. */
  maxLoraRank?: number;
}

/**
 * An adapter for loadLora(): tensors named layers.{i}.{wq|wk|wv|wo|w1|w2|w3}.lora_a (r, in) and .lora_b
 * (out, r), in f32, f16 or bf16 (held as given), pointing into `files`; B's output is multiplied by `scale` (lora_alpha / r).
 */
export interface NativeLoraSpec {
  files: string[];
  tensors: NativeTensorSpec[];
  scale: number;
  /** Reorder lora_b rows of wq/wk from Hugging Face's half-split RoPE layout to the interleaved one (a base with ropeLayout 'interleaved'). */
  halfToInterleaved?: boolean;
}

/**
 * One engine step over a varlen batch of S sequences and T tokens. Sequence s owns token rows
 * queryStartLoc[s] .. queryStartLoc[s+1]-1 (a prefill chunk or a single decode token).
 * Every array is read during the call only; the caller may reuse it for the next step.
 */
export interface NativeStepBatch {
  numSeqs: number;
  numTokens: number;
  /** (T) */ tokenIds: Int32Array;
  /** (T) absolute positions within each sequence */ positions: Int32Array;
  /** (T) KV slot written by each token: block * blockSize + offset */ slotMapping: Int32Array;
  /** (S+1) */ queryStartLoc: Int32Array;
  /** (S) context length after this step's tokens are written (cached prefix + new tokens) */ contextLens: Int32Array;
  /** (S * maxBlocksPerSeq) row-major; unused entries may hold anything */ blockTables: Int32Array;
  maxBlocksPerSeq: number;
  /**
   * (S) 1 if sequence s samples a token from its last row this step (its prompt is complete), else 0
   * (a prefill chunk that is not the last). Rows that sample are the last row of each such sequence.
   */
  sampleMask: Uint8Array;
  /** Per-sequence sampling parameters, each (S). */
  temperature: Float32Array; // 0 = greedy
  topK: Int32Array; // 0 or <0 = off
  topP: Float32Array; // 1 = off
  minP: Float32Array; // 0 = off
  repetitionPenalty: Float32Array; // 1 = off; applies to prompt and output tokens (vLLM's meaning)
  presencePenalty: Float32Array; // 0 = off; output tokens only
  frequencyPenalty: Float32Array; // 0 = off; output tokens only
  /** (S) per-sequence seed; the draw for a token depends only on (seed, position), so output is reproducible. */
  seeds: Uint32Array;
  /**
   * Tokens the penalties look at: sequence s's are penaltyTokens[penaltyOffsets[s] .. penaltyOffsets[s+1]),
   * the first promptLens[s] of them from the prompt, the rest generated. (S+1) offsets.
   */
  penaltyTokens: Int32Array;
  penaltyOffsets: Int32Array;
  penaltyPromptLens: Int32Array;
  /** (S) how many top logprobs to return for sequence s (0 = none; the sampled token's logprob is always returned). */
  numLogprobs: Int32Array;
  /**
   * Optional logit bias: sequence s adds biasValues[i] to the logit of biasTokens[i] for i in
   * biasOffsets[s] .. biasOffsets[s+1] (each id once per sequence; -Infinity bans it), before penalties.
   * Absent (undefined) means none in this step. (S+1) offsets.
   */
  biasTokens?: Int32Array;
  biasValues?: Float32Array;
  biasOffsets?: Int32Array;
  /**
   * Optional allowed-token masks (guided decoding): sequence s samples only tokens whose bit is set in the
   * ceil(vocabSize / 32) words of tokenMask from word tokenMaskOffsets[s] (bit t % 32 of word t >> 5 for
   * token t); -1 = unmasked. Applied after bias and penalties; a mask must allow some token. verify()
   * takes no proposals for a masked sequence. Absent (undefined) means none in this step. (S) offsets.
   */
  tokenMask?: Uint32Array;
  tokenMaskOffsets?: Int32Array;
  /**
   * Optional LoRA: (S) the adapter slot (loadLora) sequence s runs with, −1 = the base model. Rows are
   * grouped by slot natively; each row gets the same bits as alone. Absent means no adapter in this step.
   */
  loraSlots?: Int32Array;
}

export interface NativeStepResult {
  /** (S) sampled token per sequence; -1 where sampleMask was 0. */
  tokens: Int32Array;
  /** (S) log-probability of the sampled token under the model's (penalised, untempered) distribution. */
  logprobs: Float32Array;
  /** Width of the top-logprob rows: max of numLogprobs (0 if none asked). */
  topK: number;
  /** (S * topK) ids and logprobs of the most likely tokens, best first. */
  topIds: Int32Array;
  topLogprobs: Float32Array;
}

/**
 * Caller-owned buffers step() writes its results into, so they need no copy (ModelRunner owns one set,
 * sized for its largest step): tokens and logprobs with room for S entries, topIds and topLogprobs for
 * S × topK (S × 20 covers any step). Entries past the step's are left as they are.
 */
export interface NativeStepOutput {
  tokens: Int32Array;
  logprobs: Float32Array;
  topIds: Int32Array;
  topLogprobs: Float32Array;
}

/**
 * Draft distributions for verify(): sequence s proposed its k tokens from rows rows[s] .. rows[s] + k − 1
 * of `probs` ((Q, vocab) row-major, each row summing to 1 as sample/sampler.ts distribution() makes
 * it); rows[s] = −1 marks a deterministic proposal (n-gram lookup: q one-hot at the proposed token).
 */
export interface NativeDraftProbs {
  probs: Float64Array;
  /** (S) */
  rows: Int32Array;
}

/** Caller-owned buffers verify() writes into: tokens with room for R (the rows verified), numAccepted for S. */
export interface NativeVerifyOutput {
  tokens: Int32Array;
  numAccepted: Int32Array;
}

export interface NativeVerifyResult {
  /**
   * (R) in logits()' row order: sequence s's k + 1 entries hold its numAccepted[s] accepted proposals and
   * then the corrected (or, after k acceptances, bonus) token, then −1.
   */
  tokens: Int32Array;
  /** (S) accepted proposals per sequence; −1 where sampleMask was 0. */
  numAccepted: Int32Array;
}

export interface NativeModel {
  readonly config: NativeModelConfig;
  readonly blockSize: number;
  readonly numBlocks: number;
  /** The KV pool's element type (kvDtype resolved). */
  readonly kvDtype: 'f32' | 'f16' | 'int8' | 'fp8';
  /** 'cpu' or 'cuda', and which kernels run: e.g. 'avx2' | 'scalar'. */
  readonly backend: string;
  readonly kernels: string;
  /** Bytes of weights as held in memory after conversion. */
  readonly weightBytes: number;
  /** Threads the CPU backend computes with (numThreads, or the cores this process may use). */
  readonly numThreads: number;
  /**
   * Runs the forward pass and sampling off the event loop. One step at a time per model. With `out`
   * the results are written straight into its arrays and the result's arrays are views of them
   * (length S and S × topK; valid until `out` is reused); without, they are new arrays. Rejects with
   * E_BATCH when `out` lacks room.
   */
  step(batch: NativeStepBatch, out?: NativeStepOutput): Promise<NativeStepResult>;
  /**
   * Runs the forward pass and returns raw logits of every row whose sequence has sampleMask 1:
   * (R, vocab) with R = rowsPerSeq summed over those sequences, where each sequence contributes its
   * last `logitRows[s]` rows (default 1). Used by tests and by speculative verification (k+1 rows).
   */
  logits(batch: NativeStepBatch, logitRows?: Int32Array): Promise<Float32Array>;
  /**
   * logits() reduced natively to each row's first maximum (the greedy choice, as step() makes it at
   * temperature 0 without penalties): (R) ids in logits()'s row order. Greedy speculative
   * verification reads k + 1 ids per sequence instead of (k + 1) × vocab floats.
   */
  argmax?(batch: NativeStepBatch, logitRows?: Int32Array): Promise<Int32Array>;
  /**
   * Greedy drafting in one call: the batch's forward gives every sequence with sampleMask 1 its first
   * proposal, then the native side runs up to numDraft[s] − 1 (default k − 1) further one-token decodes,
   * each feeding the previous proposal back at the next position (slot from the sequence's block-table
   * row, which must already hold blocks for those positions). Each proposal is the raw argmax: the
   * batch's sampling parameters, penalties and logprobs are ignored. Returns (S, k) ids row-major, −1
   * past numDraft[s] and for rows with sampleMask 0. Equal to k step() calls at temperature 0.
   * Optional in the type (test fakes lack it and callers fall back to step()); the addon has it.
   */
  draft?(batch: NativeStepBatch, k: number, numDraft?: Int32Array): Promise<Int32Array>;
  /**
   * Speculative verification in one call, so no logit row crosses into JS: the batch's forward, then for
   * every sequence with sampleMask 1, k = logitRows[s] − 1 proposals (its last k tokens) are checked
   * against its last k + 1 rows with exactly the semantics of sample/verify-rows.ts (bit for bit the
   * same tokens): k = 0 samples as step() does; temperature 0 accepts while the penalised row's first
   * maximum matches; otherwise exact rejection sampling with uniforms u(seed ^ 0x27d4eb2f, position)
   * for acceptance and u(seed, position) for the corrected or bonus draw, against `draft`'s q (or
   * one-hot q where rows[s] = −1 or draft is absent). Logit bias and penalties apply as in step();
   * numLogprobs is ignored (callers wanting logprobs verify from logits() rows). With `out` the results
   * land in its arrays (views returned), else in new arrays. Optional in the type (test fakes lack it;
   * callers fall back to logits()/argmax()); the addon has it.
   */
  verify?(
    batch: NativeStepBatch,
    logitRows: Int32Array,
    draft?: NativeDraftProbs | null,
    out?: NativeVerifyOutput,
  ): Promise<NativeVerifyResult>;
  /**
   * Embeddings in one call (no sampling): the batch's forward pass without the classifier, then each
   * sequence's final-normed hidden rows pooled — 'mean' over its rows or its 'last' row — in double and
   * L2-normalised. Every sequence must carry its whole context (contextLens[s] = its rows, positions from
   * 0); sampleMask and the sampling fields are ignored. Returns (S, dim) floats row-major: with `out` a
   * view of its first S × dim entries (E_BATCH when it lacks room), else a new array. Each vector depends
   * only on its own sequence's tokens. Optional in the type (test fakes lack it); the addon has it.
   */
  embed?(batch: NativeStepBatch, pooling: NativeEmbedPooling, out?: Float32Array): Promise<Float32Array>;
  /**
   * KV transfer (native/src/core/kv-payload.h; kv-transfer/kv-payload.ts reads its header): the payload
   * of blocks `blocks` (a sequence's block table, in order) holding `numTokens` tokens — a 64-byte header
   * (fingerprint, dtype, block size, shape, counts) then every block's K and V of all layers. Runs under
   * the step lock, off the event loop. With `out` (at least 64 + blocks.length × kvBlockBytes bytes) it
   * writes there and returns a view, else a new array. Rejects E_KV_BLOCKS (ids or counts), E_DEVICE
   * (a backend without transfer). Optional in the type (test fakes lack it); the addon has it.
   */
  exportKv?(blocks: Int32Array, numTokens: number, out?: Uint8Array): Promise<Uint8Array>;
  /**
   * Reads a payload into `blocks` (as many as it holds; in range, distinct) and resolves to its token
   * count. Rejects E_KV_FORMAT (not a payload, truncated), E_KV_MODEL (another model), E_KV_DTYPE,
   * E_KV_BLOCK_SIZE, E_KV_BLOCKS. The payload must not be transferred away until it settles.
   */
  importKv?(payload: Uint8Array, blocks: Int32Array): Promise<number>;
  /** 16 hex digits over the config and the weights as loaded: equal exactly when two models compute the same K/V. */
  readonly kvFingerprint?: string;
  /** Bytes of one block in a KV payload (all layers, K and V). */
  readonly kvBlockBytes?: number;
  /**
   * Fills LoRA slot `slot` (0 .. maxLoras − 1) with an adapter, replacing what it held; runs off the
   * event loop, after any step in flight. Rejects with E_SHAPE / E_DTYPE / E_RANGE naming the tensor
   * (the slot is then empty). Optional in the type (test fakes lack it); the addon has it.
   */
  loadLora?(slot: number, spec: NativeLoraSpec): Promise<void>;
  /** Empties a LoRA slot (after any step in flight). */
  unloadLora?(slot: number): Promise<void>;
  /** LoRA slots the model was loaded with (maxLoras), and the largest rank each holds. */
  readonly maxLoras?: number;
  readonly maxLoraRank?: number;
  /** Frees weights, mappings and the KV pool. Further calls throw. */
  dispose(): void;
}

/** How embed() pools a sequence's hidden rows. */
export type NativeEmbedPooling = 'mean' | 'last';

export interface NativeBinding {
  /** Loads weights and allocates the KV pool; rejects with an Error whose `code` is one of NativeErrorCode. */
  loadModel(options: NativeLoadOptions, onProgress?: (done: number, total: number) => void): Promise<NativeModel>;
  /**
   * What this CPU offers, and `kernels`: the kernel set a CPU model loaded now would use ('avx512' | 'avx2' |
   * 'scalar'; the best this CPU and build run, unless FLOTILLA_CPU_ISA or FLOTILLA_FORCE_SCALAR says otherwise).
   */
  cpuFeatures(): { avx2: boolean; avx512: boolean; fma: boolean; f16c: boolean; threads: number; kernels: string };
  /** Measures sequential memory read bandwidth in bytes/s (for benchmarks' bandwidth bound). */
  measureReadBandwidth(bytes: number): number;
  /**
   * CUDA only: device-to-device copy bandwidth in bytes/s (read + write traffic of copying `bytes`,
   * best of 5), the HBM bound benchmarks compare decode against. Throws E_DEVICE without CUDA.
   */
  measureDeviceBandwidth(bytes: number): number;
  /** True when the CUDA backend was compiled in. */
  readonly hasCuda: boolean;
}

export type NativeErrorCode =
  | 'E_FILE' // cannot open / map a file
  | 'E_SHAPE' // tensor shape inconsistent with config
  | 'E_DTYPE' // unsupported dtype or conversion
  | 'E_RANGE' // tensor extends beyond the file
  | 'E_OOM' // allocation failed
  | 'E_BATCH' // malformed step batch (bad lengths, ids out of range)
  | 'E_DISPOSED'
  | 'E_DEVICE' // no CUDA device / driver mismatch / unsupported arch
  | 'E_INTERNAL'; // an unexpected C++ exception (a bug): the message says what
