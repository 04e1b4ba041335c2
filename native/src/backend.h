// The device-independent face of a compute backend. The CPU backend (src/cpu) implements it; a CUDA
// backend (src/cuda) will implement the same so Engine, sampling and the addon stay unchanged.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/step-batch.h"
#include "core/weights.h"

namespace flotilla {

class ThreadPool;

struct BackendOptions {
  int numBlocks = 0, blockSize = 16;
  bool kvF16 = false;
  int maxBatchTokens = 2048, maxBatchSeqs = 256;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* device() const = 0;   // "cpu" | "cuda"
  virtual const char* kernels() const = 0;  // "avx2" | "scalar" | ...
  virtual size_t kvBytes() const = 0;

  // Runs every layer over an already checked batch, writing each token's K/V into the pool, and
  // returns the logits of `rows` (token row indices): (numRows, vocab) into `logits`.
  virtual void forward(const StepBatch& batch, const int32_t* rows, int numRows, float* logits) = 0;
};

std::unique_ptr<Backend> make_cpu_backend(const ModelWeights& w, const BackendOptions& o, ThreadPool& pool);

}  // namespace flotilla
