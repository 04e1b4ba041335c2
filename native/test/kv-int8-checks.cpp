// The int8 KV pool: rows written by KvCache::write (one scale per token and head), attention over
// them by each kernel set through PagedAttention, as the CPU backend runs it (a decode row: all heads
// in one item, attend_heads where the set has it; a prefill: attend() per head, or the generic loop
// over dot_kv / axpy_kv for the scalar and AVX2 sets and head dims AVX-512 does not take). Checked:
//  1. against a double-precision softmax over the dequantized rows read back through the pool's
//     accessors (keys(), scales()): the kernels read what was stored, |diff| <= 2e-5 on O(1) outputs
//     (float sums of up to 128 products; measured 4e-6 to 6e-6);
//  2. against the same attention over an f32 pool of the unquantized K/V: the cost of quantizing,
//     |diff| <= 0.1. An element's error is at most half its row's step, max|x| / 254, and random_acts
//     puts an 8x outlier in about one row of three at head dim 32: 8 / 254 = 0.031 per element, plus
//     the scores' errors moving the softmax weights. Measured 0.060 (every set);
//  3. the decode row's output equals the prefill's row at the same position, bit for bit, where the
//     set has attend_heads (same bits per head as attend(), as for f32 / f16).
#include "kv-int8-checks.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "../src/core/kv-cache.h"
#include "../src/core/thread-pool.h"
#include "../src/cpu/attention.h"
#include "../src/cpu/kernels.h"
#include "test-weights.h"

namespace flotilla::test {

namespace {

std::vector<const CpuKernels*> all_sets() {
  std::vector<const CpuKernels*> sets = {&scalar_kernels()};
#ifdef FLOTILLA_HAVE_AVX2
  if (cpu_runs("avx2")) sets.push_back(&avx2_kernels());
#endif
#ifdef FLOTILLA_HAVE_AVX512
  if (cpu_runs("avx512")) sets.push_back(&avx512_kernels());
#endif
  return sets;
}

struct Worst {
  double stored = 0, vsF32 = 0;
  int decodeDiffers = 0, runs = 0;
};

// A one-layer pool of n tokens (nHeads query heads, nKv KV heads, head dim hd, blocks of 16 in a
// reversed block table), attended by one decode row at position n - 1 and by a prefill of all n rows.
void run_case(ThreadPool& pool, const CpuKernels& kern, int hd, int nHeads, int nKv, int n, Worst& w) {
  ModelConfig c;
  c.dim = nHeads * hd, c.hiddenDim = 4, c.nLayers = 1, c.nHeads = nHeads, c.nKvHeads = nKv, c.vocabSize = 1, c.maxSeqLen = n;
  const int bs = 16, blocks = (n + bs - 1) / bs + 1, kvDim = nKv * hd, qDim = nHeads * hd;
  std::vector<int32_t> table(blocks), slots(n), positions(n);
  for (int i = 0; i < blocks; i++) table[i] = blocks - 1 - i;
  for (int t = 0; t < n; t++) slots[t] = table[t / bs] * bs + t % bs, positions[t] = t;
  const std::vector<float> k = random_acts(size_t(n) * kvDim, 31u * hd + n), v = random_acts(size_t(n) * kvDim, 37u * hd + n);
  const std::vector<float> q = random_acts(size_t(n) * qDim, 41u * hd + n);  // with K's 8x outliers: scores up to ~10
  KvCache i8(c, blocks, bs, KvType::I8), f32(c, blocks, bs, KvType::F32);
  i8.prefault(pool), f32.prefault(pool);
  i8.write(pool, 0, k.data(), v.data(), n, slots.data());
  f32.write(pool, 0, k.data(), v.data(), n, slots.data());

  const int32_t qslPrefill[2] = {0, n}, qslDecode[2] = {0, 1}, ctx[1] = {n};
  StepBatch b;
  b.numSeqs = 1, b.maxBlocksPerSeq = blocks, b.blockTables = table.data(), b.contextLens = ctx;
  PagedAttention attn(c, n, 1);
  std::vector<float> pre(size_t(n) * qDim), preF32(size_t(n) * qDim), dec(qDim);
  b.numTokens = n, b.positions = positions.data(), b.slotMapping = slots.data(), b.queryStartLoc = qslPrefill;
  attn.run(pool, kern, i8, 0, b, q.data(), pre.data());
  attn.run(pool, kern, f32, 0, b, q.data(), preF32.data());
  b.numTokens = 1, b.positions = positions.data() + n - 1, b.slotMapping = slots.data() + n - 1, b.queryStartLoc = qslDecode;
  attn.run(pool, kern, i8, 0, b, q.data() + size_t(n - 1) * qDim, dec.data());

  // the stored values, read back through the pool's accessors
  const auto deq = [&](int kvIdx, int p, int h, int d) {
    const int blk = table[p / bs], off = p % bs;
    const uint8_t* rows = kvIdx == 0 ? i8.keys(0, blk, h) : i8.values(0, blk, h);
    return double(reinterpret_cast<const int8_t*>(rows)[size_t(off) * hd + d]) * i8.scales(0, kvIdx, blk, h)[off];
  };
  const double scale = 1.0 / std::sqrt(double(hd));
  for (int t = 0; t < n; t++) {
    for (int h = 0; h < nHeads; h++) {
      const int kh = h / (nHeads / nKv);
      std::vector<double> sc(t + 1), ref(hd, 0.0);
      double mx = -1e300, sum = 0;
      for (int p = 0; p <= t; p++) {
        double dot = 0;
        for (int d = 0; d < hd; d++) dot += double(q[size_t(t) * qDim + h * hd + d]) * deq(0, p, kh, d);
        sc[p] = dot * scale, mx = std::max(mx, sc[p]);
      }
      for (int p = 0; p <= t; p++) sum += std::exp(sc[p] - mx);
      for (int p = 0; p <= t; p++)
        for (int d = 0; d < hd; d++) ref[d] += std::exp(sc[p] - mx) / sum * deq(1, p, kh, d);
      for (int d = 0; d < hd; d++) {
        const size_t at = size_t(t) * qDim + h * hd + d;
        w.stored = std::max(w.stored, std::fabs(pre[at] - ref[d]));
        w.vsF32 = std::max(w.vsF32, double(std::fabs(pre[at] - preF32[at])));
        if (t == n - 1) w.stored = std::max(w.stored, std::fabs(dec[h * hd + d] - ref[d]));
      }
    }
  }
  w.runs++;
  if (kern.attend_heads && std::memcmp(dec.data(), pre.data() + size_t(n - 1) * qDim, sizeof(float) * qDim) != 0) w.decodeDiffers++;
}

}  // namespace

bool check_kv_int8() {
  ThreadPool pool(2);
  bool ok = true;
  // the store itself: an all-zero row, and a row's round trip within half a step of its scale
  {
    std::vector<float> x = random_acts(64, 7), zero(64, 0.f);
    std::vector<int8_t> qz(64), qx(64);
    float sz = -1, sx = 0, err = 0, amax = 0;
    quantize_row_i8(zero.data(), 64, qz.data(), &sz);
    quantize_row_i8(x.data(), 64, qx.data(), &sx);
    for (int i = 0; i < 64; i++) err = std::max(err, std::fabs(qx[i] * sx - x[i])), amax = std::max(amax, std::fabs(x[i]));
    const bool rowOk = sz == 0 && std::all_of(qz.begin(), qz.end(), [](int8_t v) { return v == 0; }) && err <= 0.5f * sx * 1.0001f &&
                       std::abs(sx * 127 - amax) <= 1e-6f * amax;
    std::printf("%s int8 KV row: zero row -> scale 0, round trip within half a step (%.2e <= %.2e)\n", rowOk ? "PASS" : "FAIL", err, 0.5f * sx);
    ok &= rowOk;
  }
  for (const CpuKernels* kern : all_sets()) {
    Worst w;
    for (int hd : {8, 16, 32, 64, 128})
      for (int n : {1, 17, 40, 130}) {
        run_case(pool, *kern, hd, 8, 2, n, w);
        run_case(pool, *kern, hd, 4, 4, n, w);
      }
    const bool pass = w.stored <= 2e-5 && w.vsF32 <= 0.1 && w.decodeDiffers == 0;
    std::printf("%s %s int8 KV attention (head dims 8..128, GQA 1 and 4, n 1..130): vs stored values %.2e, vs f32 pool %.2e, "
                "decode != prefill row in %d of %d\n",
                pass ? "PASS" : "FAIL", kern->name, w.stored, w.vsF32, w.decodeDiffers, w.runs);
    ok &= pass;
  }
  return ok;
}

}  // namespace flotilla::test
