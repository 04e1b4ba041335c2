// Speculative verification of one sequence from its target logit rows, natively, with the exact
// semantics of the TypeScript reference (packages/engine/src/sample/verify-rows.ts over
// rejection-sampler.ts and sampler.ts), so both give the same tokens bit for bit:
//   k = 0      the token the step would sample (Sampler::choose);
//   greedy     accept proposals while the penalised row's first maximum equals them, then emit that
//              row's maximum (the correction, or the bonus after k matches);
//   sampled    exact rejection sampling (Leviathan et al. 2023): accept x_i when
//              u(seed ^ kAcceptSalt, pos_i) < p_i(x_i) / q_i(x_i); at the first rejection emit a draw
//              from norm(max(0, p_i - q_i)) with u(seed, pos_i), after k acceptances a draw from p_{k+1}
//              with u(seed, pos_k). p_i is the sampler's distribution of row i (penalties, temperature,
//              top-k, top-p, min-p) as dense doubles; q_i the draft's, or one-hot at x_i when null.
// The row of position pos predicts the token at pos, and its penalties see the tokens before it.
#pragma once
#include <cstdint>
#include <vector>

#include "sampler.h"

namespace flotilla {

// Salt of the acceptance draws, independent of the sampling draws (the TypeScript ACCEPT_SALT).
constexpr uint32_t kAcceptSalt = 0x27d4eb2fu;

struct VerifyInput {
  float* rows = nullptr;               // (k + 1, vocab) raw logits; penalties are applied in place
  int k = 0;                           // proposals: the k tokens the rows 0..k-1 are tested against
  const int32_t* proposals = nullptr;  // (k)
  const double* q = nullptr;           // (k, vocab) draft distributions, or null (deterministic proposals)
  // Parameters of the last row (k): row j's position is last.position - (k - j) and its penalties
  // see the first last.numPenaltyTokens - (k - j) penalty tokens.
  SampleParams last;
};

class Verifier {
 public:
  Verifier(int vocabSize, int numThreads);

  // Writes numAccepted + 1 tokens (the accepted proposals, then the corrected or bonus token) and
  // returns numAccepted. tid picks the scratch (the sampler's and this one's).
  int verify(Sampler& sampler, const VerifyInput& in, int tid, int32_t* tokens);

 private:
  void distribution(Sampler& sampler, const float* row, const SampleParams& p, int tid, double* out) const;
  int32_t draw_from(const double* p, double u) const;
  int32_t draw_residual(const double* p, const double* q, int32_t rejected, double u) const;

  int vocab_;
  std::vector<std::vector<double>> dense_;  // per thread: (vocab) the row's distribution
};

}  // namespace flotilla
