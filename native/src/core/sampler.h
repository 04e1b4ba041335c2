// Per-sequence sampling from one logits row: penalties, log-probabilities, temperature, top-k, top-p,
// min-p, and a draw that depends only on (seed, position). Scratch is per thread, sized at load.
#pragma once
#include <cstdint>
#include <vector>

namespace flotilla {

struct SampleParams {
  float temperature = 0;
  int topK = 0;
  float topP = 1, minP = 0;
  float repetitionPenalty = 1, presencePenalty = 0, frequencyPenalty = 0;
  uint32_t seed = 0;
  int32_t position = 0;  // position of the token being sampled
  const int32_t* penaltyTokens = nullptr;
  int numPenaltyTokens = 0, numPromptTokens = 0;
  int numLogprobs = 0;
  const int32_t* biasTokens = nullptr;  // added to the logits first (StepBatch's logit bias)
  const float* biasValues = nullptr;
  int numBias = 0;
  // Guided decoding: ceil(vocab / 32) words, bit (t % 32) of word t / 32 set = token t allowed; every
  // other token's logit becomes -inf after bias and penalties. Null = no mask.
  const uint32_t* allowMask = nullptr;
};

struct SampleResult {
  int32_t token = -1;
  float logprob = 0;
  int32_t* topIds = nullptr;  // numLogprobs entries, best first
  float* topLogprobs = nullptr;
};

// The candidates of a sampled draw (temperature > 0), in the walk order: ids[0..n) (best first when
// top-k / top-p cut them, else index order), probs[id] = exp((logit - max) / T) as float, and the
// candidates at or above `floor` (min-p) weigh `total` (summed in double in walk order). Points into
// the sampler's scratch of the thread that made it: valid until that thread's next call.
struct Candidates {
  const int32_t* ids = nullptr;
  const float* probs = nullptr;  // indexed by token id
  int n = 0;
  float floor = 0;
  double total = 0;
};

// Uniform in [0, 1) from (seed, position) only (splitmix64): every seeded draw of the engine.
double sample_uniform(uint32_t seed, int32_t position);

// Vector routines for the two passes every sampled row makes over the whole vocabulary, from the CPU
// kernel set (kernels.h; core/ is built without ISA flags). A null member means the scalar loop.
struct SamplerKernels {
  int32_t (*argmax)(const float* x, int n) = nullptr;             // the first maximum
  double (*sum_exp)(const float* x, int n, float shift) = nullptr;  // sum of exp(x_i - shift)
};

class Sampler {
 public:
  Sampler(int vocabSize, int numThreads, const SamplerKernels& kern = {});

  // logits: (vocab), modified in place. tid picks the scratch.
  void sample(float* logits, const SampleParams& p, int tid, SampleResult* out);

  // The first maximum of a (vocab) row: the greedy choice.
  int32_t argmax(const float* logits) const;

  // The pieces of sample() that speculative verification (verifier.h) reuses, with the same bits:
  // logit bias, penalties, then the allowed-token mask, in place; the candidates of a draw; the token sample() would pick
  // (without its logprobs).
  void prepare(float* logits, const SampleParams& p, int tid);
  Candidates candidates(const float* logits, const SampleParams& p, int tid);
  int32_t choose(float* logits, const SampleParams& p, int tid);

 private:
  struct Scratch {
    std::vector<int32_t> counts, idx;
    std::vector<uint8_t> marks;
    std::vector<float> probs;
  };
  void apply_penalties(float* logits, const SampleParams& p, Scratch& s) const;
  void apply_mask(float* logits, const uint32_t* allow) const;
  Candidates candidates(const float* logits, float maxLogit, const SampleParams& p, Scratch& s) const;
  int32_t draw(const float* logits, float maxLogit, const SampleParams& p, Scratch& s) const;
  void top_logprobs(const float* logits, float lse, const SampleParams& p, Scratch& s, SampleResult* out) const;
  double sum_exp(const float* logits, float shift) const;

  int vocab_;
  SamplerKernels kern_;
  std::vector<Scratch> scratch_;
};

}  // namespace flotilla
