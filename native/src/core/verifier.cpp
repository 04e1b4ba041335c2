#include "verifier.h"

#include <algorithm>

namespace flotilla {

Verifier::Verifier(int vocabSize, int numThreads) : vocab_(vocabSize), dense_(numThreads) {
  for (auto& d : dense_) d.resize(vocabSize);
}

int Verifier::verify(Sampler& sampler, const VerifyInput& in, int tid, int32_t* tokens) {
  const int k = in.k;
  const auto params = [&](int j) {
    SampleParams p = in.last;
    p.position -= k - j;
    p.numPenaltyTokens = std::max(0, p.numPenaltyTokens - (k - j));
    p.numLogprobs = 0;
    return p;
  };
  const auto row = [&](int j) { return in.rows + size_t(j) * vocab_; };
  if (k == 0) {
    tokens[0] = sampler.choose(row(0), params(0), tid);
    return 0;
  }
  if (!(in.last.temperature > 0)) {
    for (int j = 0; j <= k; j++) {
      sampler.prepare(row(j), params(j), tid);
      tokens[j] = sampler.argmax(row(j));
      if (j < k && tokens[j] != in.proposals[j]) return j;
    }
    return k;
  }
  double* p = dense_[tid].data();
  const uint32_t seed = in.last.seed;
  for (int i = 0; i < k; i++) {
    const SampleParams pi = params(i);
    sampler.prepare(row(i), pi, tid);
    distribution(sampler, row(i), pi, tid, p);
    const int32_t x = in.proposals[i];
    const double* q = in.q ? in.q + size_t(i) * vocab_ : nullptr;
    const double px = p[x], qx = q ? q[x] : 1.0;
    // q(x) = 0 cannot happen for a token drawn from q: certain acceptance then, if p(x) > 0.
    const double ratio = qx > 0 ? px / qx : px > 0 ? 1.0 : 0.0;
    if (sample_uniform(seed ^ kAcceptSalt, pi.position) < ratio) {
      tokens[i] = x;
      continue;
    }
    tokens[i] = draw_residual(p, q, x, sample_uniform(seed, pi.position));
    return i;
  }
  const SampleParams pk = params(k);
  sampler.prepare(row(k), pk, tid);
  distribution(sampler, row(k), pk, tid, p);
  tokens[k] = draw_from(p, sample_uniform(seed, pk.position));
  return k;
}

// The normalised candidates of a draw as a dense vector (TypeScript's distribution()).
void Verifier::distribution(Sampler& sampler, const float* row, const SampleParams& p, int tid, double* out) const {
  std::fill_n(out, vocab_, 0.0);
  const Candidates c = sampler.candidates(row, p, tid);
  for (int i = 0; i < c.n; i++) {
    const int32_t id = c.ids[i];
    if (c.probs[id] >= c.floor) out[id] = double(c.probs[id]) / c.total;
  }
}

// A draw walking `p` in index order (TypeScript's drawFrom): the first id whose cumulative mass
// exceeds u times the total.
int32_t Verifier::draw_from(const double* p, double u) const {
  double total = 0;
  for (int i = 0; i < vocab_; i++) total += p[i];
  const double target = u * total;
  double cum = 0;
  int32_t last = 0;
  for (int i = 0; i < vocab_; i++) {
    if (!(p[i] > 0)) continue;
    cum += p[i];
    last = i;
    if (cum > target) return i;
  }
  return last;
}

// A draw from norm(max(0, p - q)), q null meaning one-hot at `rejected` (TypeScript's drawResidual);
// p itself where the residual has no mass.
int32_t Verifier::draw_residual(const double* p, const double* q, int32_t rejected, double u) const {
  const auto residual = [&](int i) {
    const double qi = q ? q[i] : i == rejected ? 1.0 : 0.0;
    return std::max(0.0, p[i] - qi);
  };
  double total = 0;
  for (int i = 0; i < vocab_; i++) total += residual(i);
  if (!(total > 0)) return draw_from(p, u);
  const double target = u * total;
  double cum = 0;
  int32_t last = -1;
  for (int i = 0; i < vocab_; i++) {
    const double r = residual(i);
    if (r <= 0) continue;
    cum += r;
    last = i;
    if (cum > target) return i;
  }
  return last;
}

}  // namespace flotilla
