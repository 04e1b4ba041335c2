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
  bool kvF16() const { return kvF16_; }  // the KV pool's element type, as kvDtype chose it
  size_t weightBytes() const { return weights_->bytes(); }
  const char* device() const { return backend_->device(); }
  const char* kernels() const { return backend_->kernels(); }
  int numThreads() const { return pool_->size(); }

  const StepOutput& step(const StepBatch& b);
  // Raw logits of the last logitRows[s] rows (1 if null) of every sequence with sampleMask 1: (R, vocab).
  void logits(const StepBatch& b, const int32_t* logitRows, int64_t lenLogitRows, std::vector<float>* out);
  // logits() reduced to the first maximum of each row (the greedy choice), (R) ids.
  void argmax(const StepBatch& b, const int32_t* logitRows, int64_t lenLogitRows, std::vector<int32_t>* out);
  // Greedy drafting in one call: b's forward gives each sequence (sampleMask 1) its first token, then
  // up to numDraft[s] - 1 (k if null) more one-token decodes feed each argmax back at the next
  // position, with slots read from b's block tables (which must cover them). Raw argmax: b's sampling
  // parameters, penalties and logprobs are ignored. (S, k) ids, -1 past numDraft[s].
  void draft(const StepBatch& b, int k, const int32_t* numDraft, int64_t lenNumDraft, std::vector<int32_t>* out);

 private:
  Engine() = default;
  BatchLimits limits() const;
  void sample_rows(const StepBatch& b, int numSampled);

  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<ModelWeights> weights_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Sampler> sampler_;
  int blockSize_ = 16, numBlocks_ = 0, maxBatchTokens_ = 0, maxBatchSeqs_ = 0;
  bool kvF16_ = false;
  std::vector<int32_t> rows_, rowSeq_;  // (maxBatchTokens) token rows needing logits and their sequence
  std::vector<float> logits_;           // (maxBatchSeqs, vocab)
  StepOutput out_;
  std::vector<float> argmaxLogits_;  // argmax(): the rows before reduction
  // draft(): neutral sampling parameters (greedy, no cuts or penalties) and each further decode batch.
  struct DraftBuffers {
    std::vector<int32_t> zerosI;  // (maxBatchSeqs + 1)
    std::vector<float> zerosF, onesF;
    std::vector<int32_t> tokenIds, positions, slotMapping, queryStartLoc, contextLens, seqOf;
    std::vector<uint8_t> sampleMask;
    std::vector<int32_t> blockTables;  // (S, maxBlocksPerSeq), grown on demand
  } draft_;
};

}  // namespace flotilla
