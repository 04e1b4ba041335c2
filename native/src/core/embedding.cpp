// Engine::embed: pooled, L2-normalised final hidden states for embeddings (OpenAI's /v1/embeddings).
// Batch-invariant: the forward pass gives every row the same bits whatever else is in the step (see
// docs/architecture.md, GEMM), and pooling reads only the sequence's own rows in a fixed order.
#include <cmath>

#include "engine.h"
#include "error.h"

namespace flotilla {

void Engine::embed(const StepBatch& b, Pooling pooling, const EmbedOutputView& out) {
  check(b);
  const int S = b.numSeqs, dim = config().dim;
  if (pooling != Pooling::Last && pooling != Pooling::Mean) fail("E_BATCH", "embed: pooling must be 'last' or 'mean'");
  if (out.len < int64_t(S) * dim)
    fail("E_BATCH", "embed output needs room for " + std::to_string(int64_t(S) * dim) + " floats (numSeqs x dim)");
  int R = 0;
  for (int s = 0; s < S; s++) {
    const int q0 = b.queryStartLoc[s], q1 = b.queryStartLoc[s + 1];
    if (q1 <= q0) fail("E_BATCH", "embed: sequence " + std::to_string(s) + " has no tokens");
    if (b.contextLens[s] != q1 - q0 || b.positions[q0] != 0)
      fail("E_BATCH", "embed: sequence " + std::to_string(s) + " must carry its whole context in the batch (positions from 0)");
    if (pooling == Pooling::Last) {
      embedRows_.resize(size_t(R) + 1);
      embedRows_[R++] = q1 - 1;
    } else {
      embedRows_.resize(size_t(R) + (q1 - q0));
      for (int t = q0; t < q1; t++) embedRows_[R++] = t;
    }
  }
  if (embedHidden_.size() < size_t(R) * dim) embedHidden_.resize(size_t(R) * dim);
  backend_->forward_hidden(b, embedRows_.data(), R, embedHidden_.data());
  pool_->parallel_for(S, [&](int s) {
    const int q0 = b.queryStartLoc[s], q1 = b.queryStartLoc[s + 1];
    // the first hidden row of sequence s: rows are in sequence order, one per sequence or one per token
    const int r0 = pooling == Pooling::Last ? s : q0, n = pooling == Pooling::Last ? 1 : q1 - q0;
    float* y = out.data + size_t(s) * dim;
    double norm = 0;
    for (int d = 0; d < dim; d++) {
      double acc = 0;
      for (int r = r0; r < r0 + n; r++) acc += embedHidden_[size_t(r) * dim + d];
      y[d] = float(acc / n);
      norm += double(y[d]) * y[d];
    }
    const double inv = norm > 0 ? 1.0 / std::sqrt(norm) : 0.0;
    for (int d = 0; d < dim; d++) y[d] = float(double(y[d]) * inv);
  });
}

}  // namespace flotilla
