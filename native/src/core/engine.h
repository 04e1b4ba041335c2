// One loaded model: weights, the backend (with its KV pool), the sampler and every buffer a step
// needs, all sized at load. step() and logits() are not reentrant; the addon serialises them.
#pragma once
#include <memory>
#include <vector>

#include "../backend.h"
#include "load-spec.h"
#include "sampler.h"
#include "step-batch.h"
#include "thread-pool.h"
#include "weights.h"

namespace flotilla {

constexpr int kMaxLogprobs = 20;

// Results of one step, in buffers owned by the Engine: (S) tokens and logprobs, (S, topK) tops.
struct StepOutput {
  int numSeqs = 0, topK = 0;
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  std::vector<int32_t> topIds;
  std::vector<float> topLogprobs;
};

class Engine {
 public:
  static std::unique_ptr<Engine> load(const LoadSpec& spec, ProgressFn progress = nullptr, void* ctx = nullptr);

  const ModelConfig& config() const { return weights_->config; }
  int blockSize() const { return blockSize_; }
  int numBlocks() const { return numBlocks_; }
  size_t weightBytes() const { return weights_->bytes(); }
  const char* device() const { return backend_->device(); }
  const char* kernels() const { return backend_->kernels(); }
  int numThreads() const { return pool_->size(); }

  const StepOutput& step(const StepBatch& b);
  // Raw logits of the last logitRows[s] rows (1 if null) of every sequence with sampleMask 1: (R, vocab).
  void logits(const StepBatch& b, const int32_t* logitRows, int64_t lenLogitRows, std::vector<float>* out);

 private:
  Engine() = default;
  BatchLimits limits() const;
  void sample_rows(const StepBatch& b, int numSampled);

  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<ModelWeights> weights_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Sampler> sampler_;
  int blockSize_ = 16, numBlocks_ = 0, maxBatchTokens_ = 0, maxBatchSeqs_ = 0;
  std::vector<int32_t> rows_, rowSeq_;  // (maxBatchTokens) token rows needing logits and their sequence
  std::vector<float> logits_;           // (maxBatchSeqs, vocab)
  StepOutput out_;
};

}  // namespace flotilla
