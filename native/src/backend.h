// The device-independent face of a compute backend. The CPU backend (src/cpu) implements it; a CUDA
// backend (src/cuda) will implement the same so Engine, sampling and the addon stay unchanged.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/sampler.h"
#include "core/step-batch.h"
#include "core/kv-type.h"
#include "core/weights.h"

namespace flotilla {

class ThreadPool;
class LoraPool;

struct BackendOptions {
  int numBlocks = 0, blockSize = 16;
  KvType kvType = KvType::F32;
  int maxBatchTokens = 2048, maxBatchSeqs = 256;
  // CUDA only, used when numBlocks is 0: KV bytes asked explicitly (0 = not given), else this
  // fraction of device memory minus weights and measured activations.
  uint64_t kvCacheBytes = 0;
  double gpuMemoryUtilization = 0.9;
  // Resident LoRA adapters (core/lora.h), owned by the Engine; null when maxLoras is 0.
  const LoraPool* lora = nullptr;
  int maxLoraRank = 0;
  // CPU only: quantized weights multiply the f32 activations (CpuKernels::matmul_f32act) instead of
  // int8-quantized ones (LoadSpec::f32Activations, the engine's activations 'f32').
  bool f32Activations = false;
};

// Where a backend that samples on its device writes a step's results: (S) tokens and logprobs,
// (S, topK) top ids and logprobs; entries of sequences that do not sample are left as they are.
struct SampleOutput {
  int topK = 0;
  int32_t* tokens = nullptr;
  float* logprobs = nullptr;
  int32_t* topIds = nullptr;
  float* topLogprobs = nullptr;
};

// Sampling parameters of sequence `seq` whose last row is `row` (defined in core/engine.cpp).
SampleParams sample_params(const StepBatch& b, int seq, int row);

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* device() const = 0;   // "cpu" | "cuda"
  virtual const char* kernels() const = 0;  // "avx2" | "scalar" | ...
  virtual size_t kvBytes() const = 0;
  virtual int numBlocks() const = 0;

  // Runs every layer over an already checked batch, writing each token's K/V into the pool, and
  // returns the logits of `rows` (token row indices): (numRows, vocab) into `logits`.
  virtual void forward(const StepBatch& batch, const int32_t* rows, int numRows, float* logits) = 0;

  // The same forward pass, stopping before the classifier: the final-normed hidden states of `rows`,
  // (numRows, dim) into `hidden` (embeddings pool them). Each row depends only on its own sequence.
  virtual void forward_hidden(const StepBatch& batch, const int32_t* rows, int numRows, float* hidden) = 0;

  // Backends that sample on the device (CUDA) return true and implement forward_sample: the forward
  // pass plus sampling of rows[i] for sequence rowSeq[i], so only token ids and logprobs come back.
  virtual bool samples_on_device() const { return false; }

  // KV transfer (core/kv-payload.h): block blocks[i] (already range-checked) to or from
  // payload + i * blockBytes, each in KvCache::export_block's layout. false: this backend cannot.
  virtual bool export_kv_blocks(const int32_t* blocks, int n, uint8_t* payload) {
    (void)blocks, (void)n, (void)payload;
    return false;
  }
  virtual bool import_kv_blocks(const int32_t* blocks, int n, const uint8_t* payload) {
    (void)blocks, (void)n, (void)payload;
    return false;
  }
  virtual void forward_sample(const StepBatch& batch, const int32_t* rows, const int32_t* rowSeq, int numRows,
                              const SampleOutput& out) {
    (void)batch, (void)rows, (void)rowSeq, (void)numRows, (void)out;
  }
};

// May rewrite the weights into the layout its kernels read (F32, Q8_0 and Q4_0 panels for AVX-512).
std::unique_ptr<Backend> make_cpu_backend(ModelWeights& w, const BackendOptions& o, ThreadPool& pool);

}  // namespace flotilla
