#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace flotilla {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

constexpr uint8_t kRepApplied = 1, kOutApplied = 2;

}  // namespace

double sample_uniform(uint32_t seed, int32_t position) {
  const uint64_t h = splitmix64((uint64_t(seed) << 32) | uint32_t(position));
  return double(h >> 11) * (1.0 / 9007199254740992.0);
}

Sampler::Sampler(int vocabSize, int numThreads, const SamplerKernels& kern) : vocab_(vocabSize), kern_(kern), scratch_(numThreads) {
  for (auto& s : scratch_) {
    s.counts.assign(vocabSize, 0);
    s.marks.assign(vocabSize, 0);
    s.idx.resize(vocabSize);
    s.probs.resize(vocabSize);
  }
}

// vLLM's semantics: repetition over prompt + output (once per distinct token), presence and
// frequency over output tokens only.
void Sampler::apply_penalties(float* logits, const SampleParams& p, Scratch& s) const {
  const int32_t* toks = p.penaltyTokens;
  const bool rep = p.repetitionPenalty != 1.f, out = p.presencePenalty != 0.f || p.frequencyPenalty != 0.f;
  if (!rep && !out) return;
  for (int i = p.numPromptTokens; i < p.numPenaltyTokens; i++) s.counts[toks[i]]++;
  for (int i = 0; i < p.numPenaltyTokens; i++) {
    const int32_t t = toks[i];
    if (rep && !(s.marks[t] & kRepApplied)) {
      logits[t] = logits[t] > 0 ? logits[t] / p.repetitionPenalty : logits[t] * p.repetitionPenalty;
      s.marks[t] |= kRepApplied;
    }
    if (out && s.counts[t] > 0 && !(s.marks[t] & kOutApplied)) {
      logits[t] -= p.frequencyPenalty * static_cast<float>(s.counts[t]) + p.presencePenalty;
      s.marks[t] |= kOutApplied;
    }
  }
  for (int i = 0; i < p.numPenaltyTokens; i++) s.counts[toks[i]] = 0, s.marks[toks[i]] = 0;
}

void Sampler::prepare(float* logits, const SampleParams& p, int tid) {
  for (int i = 0; i < p.numBias; i++) logits[p.biasTokens[i]] += p.biasValues[i];
  apply_penalties(logits, p, scratch_[tid]);
  if (p.allowMask) apply_mask(logits, p.allowMask);
}

// Word by word: a full word (the common case deep inside a JSON string) costs one compare.
void Sampler::apply_mask(float* logits, const uint32_t* allow) const {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const int words = (vocab_ + 31) / 32;
  for (int w = 0; w < words; w++) {
    const uint32_t m = allow[w];
    if (m == 0xffffffffu) continue;
    const int base = w * 32, n = std::min(32, vocab_ - base);
    for (int b = 0; b < n; b++) {
      if (!((m >> b) & 1u)) logits[base + b] = kNegInf;
    }
  }
}

Candidates Sampler::candidates(const float* logits, const SampleParams& p, int tid) {
  return candidates(logits, logits[argmax(logits)], p, scratch_[tid]);
}

int32_t Sampler::choose(float* logits, const SampleParams& p, int tid) {
  prepare(logits, p, tid);
  const int32_t best = argmax(logits);
  return p.temperature > 0 ? draw(logits, logits[best], p, scratch_[tid]) : best;
}

void Sampler::sample(float* logits, const SampleParams& p, int tid, SampleResult* out) {
  Scratch& s = scratch_[tid];
  prepare(logits, p, tid);
  const int32_t best = argmax(logits);
  const float maxLogit = logits[best];
  const float lse = maxLogit + static_cast<float>(std::log(sum_exp(logits, maxLogit)));
  out->token = p.temperature > 0 ? draw(logits, maxLogit, p, s) : best;
  out->logprob = logits[out->token] - lse;
  if (p.numLogprobs > 0) top_logprobs(logits, lse, p, s, out);
}

int32_t Sampler::argmax(const float* logits) const {
  if (kern_.argmax) return kern_.argmax(logits, vocab_);
  int32_t best = 0;
  for (int i = 1; i < vocab_; i++) {
    if (logits[i] > logits[best]) best = i;
  }
  return best;
}

// The vector routine sums float exps in float over short chunks, each added into the double total.
double Sampler::sum_exp(const float* logits, float shift) const {
  if (kern_.sum_exp) return kern_.sum_exp(logits, vocab_, shift);
  double sum = 0;  // float exp (a few times faster than double's over a 32k vocabulary), summed in double
  for (int i = 0; i < vocab_; i++) sum += std::exp(logits[i] - shift);
  return sum;
}

// Kept scalar: a vector exp would round some probs differently from std::exp in double, and so could
// change which token a seeded draw picks.
Candidates Sampler::candidates(const float* logits, float maxLogit, const SampleParams& p, Scratch& s) const {
  const double invT = 1.0 / p.temperature;
  for (int i = 0; i < vocab_; i++) s.probs[i] = static_cast<float>(std::exp((double(logits[i]) - maxLogit) * invT));
  int n = vocab_;
  std::iota(s.idx.begin(), s.idx.end(), 0);
  const auto better = [&](int32_t a, int32_t b) { return s.probs[a] > s.probs[b] || (s.probs[a] == s.probs[b] && a < b); };
  const bool topK = p.topK > 0 && p.topK < vocab_;
  if (topK) {
    n = p.topK;
    std::nth_element(s.idx.begin(), s.idx.begin() + n, s.idx.end(), better);
  }
  if (topK || p.topP < 1.f) std::sort(s.idx.begin(), s.idx.begin() + n, better);
  if (p.topP < 1.f) {  // smallest prefix of the (top-k) candidates holding topP of their mass
    double mass = 0, cum = 0;
    for (int i = 0; i < n; i++) mass += s.probs[s.idx[i]];
    int keep = 0;
    while (keep < n && cum < p.topP * mass) cum += s.probs[s.idx[keep++]];
    n = std::max(keep, 1);
  }
  Candidates c;
  c.ids = s.idx.data();
  c.probs = s.probs.data();
  c.n = n;
  c.floor = p.minP * 1.0f;  // the most likely token has probs 1 here
  for (int i = 0; i < n; i++) {
    if (s.probs[s.idx[i]] >= c.floor) c.total += s.probs[s.idx[i]];
  }
  return c;
}

int32_t Sampler::draw(const float* logits, float maxLogit, const SampleParams& p, Scratch& s) const {
  const Candidates c = candidates(logits, maxLogit, p, s);
  const double target = sample_uniform(p.seed, p.position) * c.total;
  double cum = 0;
  int32_t last = c.ids[0];
  for (int i = 0; i < c.n; i++) {
    const int32_t id = c.ids[i];
    if (c.probs[id] < c.floor) continue;
    cum += c.probs[id];
    last = id;
    if (cum > target) return id;
  }
  return last;
}

void Sampler::top_logprobs(const float* logits, float lse, const SampleParams& p, Scratch& s, SampleResult* out) const {
  const int k = std::min(p.numLogprobs, vocab_);
  std::iota(s.idx.begin(), s.idx.end(), 0);
  std::partial_sort(s.idx.begin(), s.idx.begin() + k, s.idx.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  for (int i = 0; i < k; i++) {
    out->topIds[i] = s.idx[i];
    out->topLogprobs[i] = logits[s.idx[i]] - lse;
  }
}

}  // namespace flotilla
