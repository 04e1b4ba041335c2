// Launchers of every kernel family, one .cu file each. Shapes: T tokens, row-major activations in f32.
#pragma once
#include "../core/kv-type.h"
#include "common.cuh"

namespace flotilla {
namespace cuda {

// elementwise.cu ------------------------------------------------------------------------------------
// x (T, dim) = row tokenIds[t] of the embedding (any WKind), decoded to f32.
void embed(const DevWeight& emb, const int32_t* tokenIds, int T, float* x, cudaStream_t s);
// out (T, n) = rmsnorm(x) * w; with `delta` non-null first x += delta (the residual add), in place.
void rmsnorm(float* x, const float* delta, const float* w, float* out, int T, int n, float eps, cudaStream_t s);
// Same, but only for rows rows[i] of x: out (R, n). Used for the final norm of the sampled rows.
void rmsnorm_rows(const float* x, const int32_t* rows, const float* w, float* out, int R, int n, float eps, cudaStream_t s);
// Rotates q (T, nHeads*hd) and k (T, nKv*hd) in place at positions[t]; invFreq (hd/2); half = HF layout.
void rope(float* q, float* k, const int32_t* positions, const float* invFreq, int T, int nHeads, int nKv, int hd,
          bool half, cudaStream_t s);
// gate (T, n) = silu(gate) * up.
void swiglu(float* gate, const float* up, int T, int n, cudaStream_t s);
// dst (count) = src converted to bf16 (or f16 when `f16`), for the tensor-core GEMM paths.
void to_half(const float* src, void* dst, int64_t count, bool f16, cudaStream_t s);

// attention.cu --------------------------------------------------------------------------------------
// per layer: K then V, each (numBlocks, nKv, blockSize, hd) elements of `type` (f32, f16 or fp8 e4m3);
// for fp8 then K's then V's f32 row scales, each (numBlocks, nKv, blockSize) (kv-type.h: one scale per
// token and head, x ~= e4m3 * scale, scale = max|x| / 448). layerBytes() per layer, as
// KvCache::bytes_per_block counts it. (The CPU pool keeps a block's scales inside the block instead.)
struct KvView {
  void* base = nullptr;
  int numBlocks = 0, blockSize = 16, nKv = 0, hd = 0;
  KvType type = KvType::F32;
  __host__ __device__ size_t layerStride() const { return size_t(2) * numBlocks * nKv * blockSize * hd; }  // elements
  __host__ __device__ size_t rowsPerPlane() const { return size_t(numBlocks) * nKv * blockSize; }
  __host__ __device__ size_t layerBytes() const {
    const int eb = type == KvType::F32 ? 4 : type == KvType::F16 ? 2 : 1;
    return layerStride() * eb + (type == KvType::Fp8 ? 2 * rowsPerPlane() * sizeof(float) : 0);
  }
};
// k, v (T, nKv*hd) into slots slotMapping[t] (block*blockSize+offset; < 0 skips the token).
void kv_write(const KvView& kv, int layer, const float* k, const float* v, const int32_t* slots, int T, cudaStream_t s);

// Step metadata on the device, built on the host per step (see backend.cu).
struct AttnPlan {
  const int32_t* positions;    // (T)
  const int32_t* rowSeq;       // (T) sequence of each token row
  const int32_t* blockTables;  // (S, maxBlocksPerSeq)
  int maxBlocksPerSeq;
  const int32_t* decodeRows;   // (numDecode) rows attended by the split-K decode kernel
  int numDecode;
  const int32_t* tiles;        // (numTiles, 2): first row, row count (<= kPrefillTile) of prefill tiles
  int numTiles;
  int maxSplits;               // splits of kSplitLen keys per decode row (grid size, fixed per engine)
  float* partial;              // (maxRows, nHeads, maxSplits, hd + 2) split-K partial results
};
constexpr int kPrefillTile = 16, kSplitLen = 512;
// out (T, nHeads*hd) = softmax(q k^T / sqrt(hd)) v over each row's keys 0..positions[t] (causal,
// through the block table, cached prefix included).
void attention(const KvView& kv, int layer, const AttnPlan& p, const float* q, float* out, int nHeads, cudaStream_t s);

// gemm.cu -------------------------------------------------------------------------------------------
// y (T, w.rows) = x (T, w.cols) * w^T. `xh` is scratch for x converted to half precision (T*cols)
// for the tensor-core kernels. Small T takes a GEMV kernel that streams the weights once.
void gemm(const DevWeight& w, const float* x, int T, float* y, void* xh, cudaStream_t s);
// Whether the last gemm() calls went through cuBLASLt (for `kernels` reporting).
const char* gemm_path();

// cublaslt.cu ---------------------------------------------------------------------------------------
// Loads libcublasLt at run time; false (and nothing happens) when it cannot be found.
bool lt_available();
// y (T, N) f32 = x (T, K) half * w (N, K)^T half; `f16` picks fp16 over bf16. False if cuBLASLt failed.
bool lt_gemm(const void* w, const void* xh, float* y, int N, int K, int T, bool f16, cudaStream_t s);

// sampler.cu ----------------------------------------------------------------------------------------
struct SampleArgs {
  const float* logits;     // (R, vocab), left unchanged
  float* work;             // (R, vocab) scratch: penalised logits
  float* probs;            // (R, vocab) scratch: exp((logit - max) / temperature)
  int32_t* counts;         // (R, vocab) zeroed scratch, left zeroed
  int R, vocab;
  const int32_t* rowSeq;   // (R) sequence of each sampled row
  const int32_t* rowPos;   // (R) position of the token being sampled
  const float *temperature, *topP, *minP, *repetition, *presence, *frequency;  // (S) each
  const int32_t *topK, *numLogprobs, *penaltyTokens, *penaltyOffsets, *promptLens;
  const int32_t* biasTokens;    // logit bias: sequence s's (token, value) pairs at biasOffsets[s] .. [s+1]
  const float* biasValues;
  const int32_t* biasOffsets;   // (S+1)
  const uint32_t* tokenMask;    // guided decoding: sequence s's allowed-token bits at tokenMaskOffsets[s] (-1 none)
  const int32_t* tokenMaskOffsets;  // (S)
  const uint32_t* seeds;
  int topKWidth;           // row stride of topIds/topLogprobs
  int32_t* tokens;         // (S) out
  float* logprobs;         // (S) out
  int32_t* topIds;         // (S, topKWidth) out
  float* topLogprobs;      // (S, topKWidth) out
  int32_t* fallback;       // (R) out: 1 where the candidate set was too large and the host must sample
};
void sample(const SampleArgs& a, cudaStream_t s);
constexpr int kSampleCap = 4096;  // candidates a block can sort in shared memory

}  // namespace cuda
}  // namespace flotilla
