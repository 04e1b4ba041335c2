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
};

struct SampleResult {
  int32_t token = -1;
  float logprob = 0;
  int32_t* topIds = nullptr;  // numLogprobs entries, best first
  float* topLogprobs = nullptr;
};

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

 private:
  struct Scratch {
    std::vector<int32_t> counts, idx;
    std::vector<uint8_t> marks;
    std::vector<float> probs;
  };
  void apply_penalties(float* logits, const SampleParams& p, Scratch& s) const;
  int32_t draw(const float* logits, float maxLogit, const SampleParams& p, Scratch& s) const;
  void top_logprobs(const float* logits, float lse, const SampleParams& p, Scratch& s, SampleResult* out) const;
  double sum_exp(const float* logits, float shift) const;

  int vocab_;
  SamplerKernels kern_;
  std::vector<Scratch> scratch_;
};

}  // namespace flotilla
