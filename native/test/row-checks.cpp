#include "row-checks.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "../src/core/kv-cache.h"
#include "../src/core/sampler.h"
#include "../src/core/thread-pool.h"
#include "../src/cpu/ops.h"
#include "test-weights.h"

namespace flotilla::test {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
const int kLens[] = {1, 5, 15, 16, 17, 31, 63, 64, 65, 100, 768, 2049};

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// rmsnorm and swiglu within a relative 1e-6 of ops.cpp (rmsnorm sums its squares in another order,
// swiglu's exp is a polynomial), add_into exact; each also the same bits at an unaligned address.
bool check_ops(const CpuKernels& simd) {
  float worstNorm = 0, worstSilu = 0;
  bool exact = true, invariant = true;
  for (int n : kLens) {
    const std::vector<float> x = random_acts(n, 13u * n, 4.f), w = random_acts(n, 17u * n), up = random_acts(n, 19u * n);
    std::vector<float> g = random_acts(n, 23u * n, 8.f);
    if (n > 8) g[1] = 120, g[2] = -120, g[3] = kInf, g[4] = -0.f, g[5] = 88.5f, g[6] = -88.5f, g[7] = -1e-30f;
    std::vector<float> a(n), b(n + 3), ga = g, gb(n + 3);
    rmsnorm(a.data(), x.data(), w.data(), n, 1e-5f);
    simd.rmsnorm(b.data(), x.data(), w.data(), n, 1e-5f);
    for (int i = 0; i < n; i++) worstNorm = std::max(worstNorm, std::fabs(a[i] - b[i]) / (std::fabs(a[i]) + 1e-30f));
    std::vector<float> xs(n + 3);
    std::memcpy(xs.data() + 3, x.data(), 4 * size_t(n));
    simd.rmsnorm(b.data() + 3, xs.data() + 3, w.data(), n, 1e-5f);
    simd.rmsnorm(a.data(), x.data(), w.data(), n, 1e-5f);
    invariant &= std::memcmp(a.data(), b.data() + 3, 4 * size_t(n)) == 0;

    swiglu(ga.data(), up.data(), n);
    std::memcpy(gb.data() + 3, g.data(), 4 * size_t(n));
    simd.swiglu(gb.data() + 3, up.data(), n);
    for (int i = 0; i < n; i++) {
      const float r = ga[i], s = gb[3 + i];
      if (std::isnan(r) || std::isnan(s)) exact &= std::isnan(r) == std::isnan(s);
      else worstSilu = std::max(worstSilu, std::fabs(r - s) / (std::fabs(r) + 1e-30f));
    }
    std::vector<float> sa = x, sb = x;
    add_into(sa.data(), w.data(), n);
    simd.add_into(sb.data(), w.data(), n);
    exact &= std::memcmp(sa.data(), sb.data(), 4 * size_t(n)) == 0;
  }
  const bool ok = worstNorm <= 1e-6f && worstSilu <= 1e-6f && exact && invariant;
  std::printf("%s %s rmsnorm/swiglu/add_into vs scalar (n 1..2049, swiglu at +-inf/+-120): worst relative diff rmsnorm %.2e, swiglu %.2e; "
              "add_into and NaNs exact: %s; unaligned rows same bits: %s\n",
              ok ? "PASS" : "FAIL", simd.name, worstNorm, worstSilu, exact ? "yes" : "NO", invariant ? "yes" : "NO");
  return ok;
}

int32_t scalar_argmax(const std::vector<float>& x) {
  int32_t best = 0;
  for (int i = 1; i < int(x.size()); i++)
    if (x[i] > x[best]) best = i;
  return best;
}

// argmax exactly the scalar loop's (ties, signed zeros, NaNs, -inf rows); the exp sum and the
// Sampler's logprob within 1e-6 relative of the scalar double sum.
bool check_sampler(const CpuKernels& simd) {
  if (!simd.argmax || !simd.sum_exp) return true;
  bool argOk = true, tokOk = true;
  double worstSum = 0, worstLp = 0;
  std::mt19937 rng(7);
  for (int n : {1, 2, 15, 17, 63, 64, 65, 100, 255, 256, 257, 32000, 32003}) {
    for (int c = 0; c < 12; c++) {
      std::vector<float> x = random_acts(n, 31u * n + c, 10.f);
      const int j = int(rng() % n), k = int(rng() % n);
      if (c == 1) x[j] = x[k] = 50;                            // a tie of the maximum
      if (c == 2) x[0] = 50, x[n - 1] = 50;
      if (c == 3) x[j] = -0.f, x[k] = 0.f;                     // zeros of both signs (the max when the rest is below)
      if (c == 3) for (float& v : x) v = v > 0 ? -v : v;
      if (c == 4) x[j] = NAN;
      if (c == 5) x[0] = NAN;
      if (c == 6) std::fill(x.begin(), x.end(), -kInf);
      if (c == 7) std::fill(x.begin(), x.end(), 3.f);
      if (c == 8) x[n - 1] = 60;                               // the maximum in the tail
      if (c == 9) for (float& v : x) v = std::round(v);        // many ties
      argOk &= simd.argmax(x.data(), n) == scalar_argmax(x);
      if (c == 4 || c == 5 || c == 6) continue;
      const float m = x[scalar_argmax(x)];
      double ref = 0;
      for (float v : x) ref += std::exp(v - m);
      worstSum = std::max(worstSum, std::fabs(simd.sum_exp(x.data(), n, m) - ref) / ref);
      Sampler a(n, 1), b(n, 1, SamplerKernels{simd.argmax, simd.sum_exp});
      std::vector<float> xa = x, xb = x;
      SampleResult ra, rb;
      a.sample(xa.data(), SampleParams{}, 0, &ra);
      b.sample(xb.data(), SampleParams{}, 0, &rb);
      tokOk &= ra.token == rb.token;
      // logprob = logit - lse, lse rounded to float at the max logit's magnitude
      worstLp = std::max(worstLp, double(std::fabs(ra.logprob - rb.logprob)) / (1 + std::fabs(ra.logprob) + std::fabs(m)));
    }
  }
  const bool ok = argOk && tokOk && worstSum <= 1e-6 && worstLp <= 1e-6;
  std::printf("%s %s sampler argmax/sum_exp vs scalar (n 1..32003; ties, +-0, NaN, -inf rows): argmax exact: %s, greedy tokens same: %s, "
              "worst relative diff exp sum %.2e, logprob %.2e\n",
              ok ? "PASS" : "FAIL", simd.name, argOk ? "yes" : "NO", tokOk ? "yes" : "NO", worstSum, worstLp);
  return ok;
}

// to_f16 against f32_to_fp16 bit for bit on every non-NaN float of each sign and exponent with all
// 2^13 patterns of the low (rounded-off) mantissa bits under several high ones, plus random patterns.
bool check_to_f16(const CpuKernels& simd) {
  if (!simd.to_f16) return true;
  std::vector<float> x;
  std::mt19937 rng(11);
  for (uint32_t sign : {0u, 1u})
    for (uint32_t e = 0; e < 256; e++)
      for (uint32_t hi : {0u, 1u, 0x155u, 0x200u, 0x3feu, 0x3ffu, uint32_t(rng() & 0x3ff)})
        for (uint32_t lo = 0; lo < (1u << 13); lo++) {
          const uint32_t u = (sign << 31) | (e << 23) | (hi << 13) | lo;
          if (e == 255 && (u & 0x7fffff)) continue;  // NaN payloads may differ
          x.push_back(from_bits(u));
        }
  for (int i = 0; i < (1 << 20); i++) {
    const float f = from_bits(uint32_t(rng()));
    if (!std::isnan(f)) x.push_back(f);
  }
  for (float f : {0.f, 65504.f, 65519.99f, 65520.f, 65536.f, 1e-40f, 5.9604645e-8f, 2.9802322e-8f, 6.1035156e-5f, 1.00048828125f})
    x.push_back(f), x.push_back(-f);
  std::vector<uint16_t> h(x.size() + 7);
  size_t bad = 0;
  for (size_t at = 0; at < x.size(); at += 4099) {  // odd lengths and unaligned starts exercise the tail
    const int n = int(std::min<size_t>(4099, x.size() - at));
    simd.to_f16(x.data() + at, h.data() + at, n);
  }
  for (size_t i = 0; i < x.size(); i++) bad += h[i] != f32_to_fp16(x[i]);
  const bool ok = bad == 0;
  std::printf("%s %s to_f16 == f32_to_fp16 (%zu values: every exponent and sign, all rounding bits, subnormals, overflow to inf, random): %zu differ\n",
              ok ? "PASS" : "FAIL", simd.name, x.size(), bad);
  return ok;
}

// A KV cache written by the set's to_f16 across a pool equals one written with f32_to_fp16 a token at
// a time (and f32 likewise), slots in a shuffled order.
bool check_kv_write(const CpuKernels& simd) {
  ModelConfig c;
  c.dim = 96, c.nHeads = 3, c.nKvHeads = 3, c.nLayers = 2, c.hiddenDim = 128, c.vocabSize = 10, c.maxSeqLen = 64;
  const int blocks = 8, bs = 5, T = 37, kvDim = c.kvDim();
  const std::vector<float> k = random_acts(size_t(T) * kvDim, 41, 3.f), v = random_acts(size_t(T) * kvDim, 43, 3.f);
  std::vector<int32_t> slots(blocks * bs);
  for (int i = 0; i < blocks * bs; i++) slots[i] = i;
  std::shuffle(slots.begin(), slots.end(), std::mt19937(5));
  ThreadPool pool(4);
  bool ok = true;
  for (KvType type : {KvType::F32, KvType::F16, KvType::I8}) {
    KvCache a(c, blocks, bs, type), b(c, blocks, bs, type, simd.to_f16);
    a.prefault(pool), b.prefault(pool);
    for (int t = 0; t < T; t++) a.write(pool, 1, k.data() + size_t(t) * kvDim, v.data() + size_t(t) * kvDim, 1, slots.data() + t);
    b.write(pool, 1, k.data(), v.data(), T, slots.data());
    const size_t bytes = a.head_block_bytes();  // rows, and int8's scales after them
    for (int blk = 0; blk < blocks; blk++)
      for (int h = 0; h < c.nKvHeads; h++)
        for (int layer = 0; layer < 2; layer++)
          ok &= std::memcmp(a.keys(layer, blk, h), b.keys(layer, blk, h), bytes) == 0 && std::memcmp(a.values(layer, blk, h), b.values(layer, blk, h), bytes) == 0;
  }
  std::printf("%s %s KV write across the pool (f32, f16 via to_f16, int8 with its scales; %d tokens, shuffled slots) == serial scalar write\n", ok ? "PASS" : "FAIL",
              simd.name, T);
  return ok;
}

}  // namespace

bool check_row_kernels(const CpuKernels& simd) {
  bool ok = check_ops(simd);
  ok &= check_sampler(simd);
  ok &= check_to_f16(simd);
  ok &= check_kv_write(simd);
  return ok;
}

}  // namespace flotilla::test
