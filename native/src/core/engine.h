// One loaded model: weights, the backend (with its KV pool), the sampler and every buffer a step
// needs, all sized at load. step() and logits() are not reentrant; the addon serialises them.
#pragma once
#include <memory>
#include <vector>

#include "../backend.h"
#include "kv-payload.h"
#include "load-spec.h"
#include "sampler.h"
#include "step-batch.h"
#include "thread-pool.h"
#include "verifier.h"
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

// Caller-owned buffers a step writes its results into (the addon passes the JS typed arrays), with
// their element counts: room for (S) tokens and logprobs and (S, topK) tops, topK the largest
// numLogprobs of a sampled sequence. Entries past those are left as they are.
struct StepOutputView {
  int32_t* tokens = nullptr;
  float* logprobs = nullptr;
  int32_t* topIds = nullptr;
  float* topLogprobs = nullptr;
  int64_t lenTokens = 0, lenLogprobs = 0, lenTopIds = 0, lenTopLogprobs = 0;
};

// Draft distributions for verify(): sequence s with rowOf[s] >= 0 proposed its k tokens from
// probs rows rowOf[s] .. rowOf[s] + k - 1, each (vocab) doubles; rowOf[s] = -1 (or rowOf null) means
// a deterministic proposal (n-gram lookup: q one-hot at the proposed token).
struct DraftProbs {
  const double* probs = nullptr;
  int64_t lenProbs = 0;
  const int32_t* rowOf = nullptr;
  int64_t lenRowOf = 0;
};

// Where verify() writes: tokens (R) in logits()' row order, numAccepted (S).
struct VerifyOutputView {
  int32_t* tokens = nullptr;
  int32_t* numAccepted = nullptr;
  int64_t lenTokens = 0, lenNumAccepted = 0;
};

// How embed() pools a sequence's final-normed hidden rows into one vector.
enum class Pooling { Last = 0, Mean = 1 };

// Where embed() writes: (S, dim) floats, row s the L2-normalised embedding of sequence s.
struct EmbedOutputView {
  float* data = nullptr;
  int64_t len = 0;
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
  int maxBatchTokens() const { return maxBatchTokens_; }
  int maxBatchSeqs() const { return maxBatchSeqs_; }

  // One step into `out` (E_BATCH when it lacks room); returns topK, the width of its top rows.
  int step(const StepBatch& b, const StepOutputView& out);
  // The same into the Engine's own buffers (valid until the next step).
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
  // Speculative verification in one call (verifier.h): b's forward, then every sequence with sampleMask 1
  // is verified from its last logitRows[s] rows (1 if null): k = logitRows[s] - 1 proposals, its last k
  // tokens, against the target rows with b's sampling parameters (logit bias and penalties included;
  // numLogprobs ignored). Sequence s's k + 1 entries of out.tokens hold its numAccepted + 1 kept tokens
  // then -1; out.numAccepted[s] is -1 where sampleMask is 0. Returns R, the entries of out.tokens used.
  int verify(const StepBatch& b, const int32_t* logitRows, int64_t lenLogitRows, const DraftProbs& q,
             const VerifyOutputView& out);
  // Embeddings (embedding.cpp) in one call: b's forward without the classifier or sampling (sampleMask and
  // the sampling parameters are ignored), each sequence's final-normed hidden rows pooled (mean over its
  // rows, or its last row) in double and L2-normalised into out row s. Every sequence must carry its whole
  // context in b (no cached prefix: contextLens[s] is its row count), so its vector depends on its tokens only.
  void embed(const StepBatch& b, Pooling pooling, const EmbedOutputView& out);

  // KV transfer (kv-payload.h). What a payload must match here: model fingerprint, dtype, shape.
  const KvPoolInfo& kvPool() const { return kvPool_; }
  // Writes the payload of `n` blocks (in sequence order) holding `numTokens` tokens into dst, which has
  // `len` >= kv_payload_bytes(kvPool(), n) bytes. E_KV_BLOCKS: bad ids or counts; E_DEVICE: backend cannot.
  void export_kv(const int32_t* blocks, int n, int numTokens, uint8_t* dst, size_t len);
  // Checks a payload (check_kv_payload's errors), then reads its blocks into blocks[0..n) (n must be
  // its block count; ids in range and distinct). Returns the payload's token count.
  int import_kv(const uint8_t* src, size_t len, const int32_t* blocks, int n);

 private:
  Engine() = default;
  BatchLimits limits() const;
  void sample_rows(const StepBatch& b, int numSampled, const SampleOutput& out);
  int logit_rows(const StepBatch& b, const int32_t* logitRows, int64_t lenLogitRows);

  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<ModelWeights> weights_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Sampler> sampler_;
  std::unique_ptr<Verifier> verifier_;
  int blockSize_ = 16, numBlocks_ = 0, maxBatchTokens_ = 0, maxBatchSeqs_ = 0;
  bool kvF16_ = false;
  KvPoolInfo kvPool_;
  std::vector<int32_t> rows_, rowSeq_;  // (maxBatchTokens) token rows needing logits and their sequence
  std::vector<int32_t> seqRow_;         // (maxBatchSeqs) logit_rows(): first row of each sequence
  std::vector<float> logits_;           // (maxBatchSeqs, vocab)
  StepOutput out_;
  std::vector<float> argmaxLogits_;  // argmax(): the rows before reduction
  std::vector<float> verifyLogits_;  // verify(): its rows, grown on demand
  std::vector<float> embedHidden_;   // embed(): hidden rows, grown on demand
  std::vector<int32_t> embedRows_;   // embed(): which token rows are pooled
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
