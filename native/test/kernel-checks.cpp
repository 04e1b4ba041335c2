#include "kernel-checks.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "../src/core/thread-pool.h"
#include "../src/cpu/kernels.h"
#include "row-checks.h"
#include "test-weights.h"

namespace flotilla::test {

namespace {

KvType kt(bool f16) { return f16 ? KvType::F16 : KvType::F32; }

std::vector<const CpuKernels*> simd_sets() {
  std::vector<const CpuKernels*> sets;
#ifdef FLOTILLA_HAVE_AVX2
  if (cpu_runs("avx2")) sets.push_back(&avx2_kernels());
#endif
#ifdef FLOTILLA_HAVE_AVX512
  if (cpu_runs("avx512")) sets.push_back(&avx512_kernels());
#endif
  return sets;
}

// y (T, rows) through kern, rows split in two ranges at `split` (as threads split them).
std::vector<float> run_matmul(const CpuKernels& kern, const Weight& w, const std::vector<float>& x, int T, int split) {
  const size_t ldq = kern.quant_act_bytes(w.cols);
  AlignedBuffer xq(ldq * T + 64, "test activations");
  for (int t = 0; t < T; t++) kern.quantize_act(x.data() + size_t(t) * w.cols, w.cols, xq.data() + ldq * t);
  const MatmulIn in{T, w.cols, x.data(), w.cols, xq.data(), ldq};
  std::vector<float> y(size_t(T) * w.rows, NAN);
  kern.matmul(w, in, y.data(), w.rows, 0, split);
  kern.matmul(w, in, y.data(), w.rows, split, w.rows);
  return y;
}

// Sum of |w_k x_k| per output: the scale of the rounding differences between two kernel sets.
std::vector<float> magnitudes(const Weight& w, const std::vector<float>& x, int T) {
  std::vector<float> row(size_t(groups_of(w.cols)) * kGroup), m(size_t(T) * w.rows);
  for (int n = 0; n < w.rows; n++) {
    decode_row(w.type, w.row(n), w.cols, row.data());
    for (int t = 0; t < T; t++) {
      double s = 0;
      for (int k = 0; k < w.cols; k++) s += std::fabs(row[k] * x[size_t(t) * w.cols + k]);
      m[size_t(t) * w.rows + n] = static_cast<float>(s);
    }
  }
  return m;
}

struct Shape {
  int rows, cols;
};

// panels: the SIMD set gets the weight in the panel layout (weights.h), the scalar set row-major; the
// panel weight's rows must also read back (read_row) as the row-major ones decode.
bool check_matmul(const CpuKernels& simd, DType type, bool panels) {
  const Shape shapes[] = {{1, 1}, {3, 7}, {5, 31}, {17, 32}, {6, 33}, {13, 63}, {9, 64}, {21, 65}, {7, 100}, {11, 129}, {33, 257}, {67, 777}};
  const int tokens[] = {1, 2, 3, 4, 5, 6, 7, 8, 13, 31, 64, 65, 70};
  // f32/f16/bf16 differ from scalar by FMA and summation order; the integer kernels share exact
  // integer group sums and differ only in how the scaled group sums are added (measured: ~1.5e-7).
  const float tol = 5e-7f;
  ThreadPool pool(2);
  float worst = 0;
  bool invariant = true, rowsOk = true;
  for (const Shape& s : shapes) {
    const Weight w = random_weight(type, s.rows, s.cols, 7u * s.rows + s.cols);
    Weight wp = random_weight(type, s.rows, s.cols, 7u * s.rows + s.cols);
    if (panels) {
      to_panels(wp, pool);
      if (!wp.panels || wp.bytes() != size_t(kPanel) * wp.rowBytes * size_t((s.rows + kPanel - 1) / kPanel)) invariant = false;
      std::vector<float> ra(size_t(groups_of(s.cols)) * kGroup), rb(ra.size());
      for (int n = 0; n < s.rows; n++) {
        read_row(wp, n, ra.data());
        decode_row(w.type, w.row(n), w.cols, rb.data());
        if (std::memcmp(ra.data(), rb.data(), sizeof(float) * s.cols) != 0) rowsOk = false;
      }
    }
    const auto split = [&](int n) { return panels ? n / kPanel * kPanel : n; };  // panel kernels take whole panels
    for (int T : tokens) {
      const std::vector<float> x = random_acts(size_t(T) * s.cols, 31u * T + s.cols);
      const std::vector<float> a = run_matmul(simd, wp, x, T, split(s.rows / 2)), b = run_matmul(scalar_kernels(), w, x, T, s.rows / 3);
      const std::vector<float> m = magnitudes(w, x, T);
      for (size_t i = 0; i < a.size(); i++) {
        const float err = std::fabs(a[i] - b[i]) / (m[i] + 1e-30f);
        worst = std::isfinite(a[i]) ? std::max(worst, err) : INFINITY;
      }
      // every token alone gives the same bits as in the batch, whatever the split
      for (int t = 0; t < T; t += std::max(1, T / 3)) {
        const std::vector<float> xt(x.begin() + size_t(t) * s.cols, x.begin() + size_t(t + 1) * s.cols);
        const std::vector<float> one = run_matmul(simd, wp, xt, 1, split(s.rows - 1));
        invariant &= std::memcmp(one.data(), a.data() + size_t(t) * s.rows, sizeof(float) * s.rows) == 0;
      }
    }
  }
  const bool ok = worst <= tol && invariant && rowsOk;
  std::printf("%s %s matmul %s%s vs scalar: worst |diff| / sum|w*x| = %.2e (tolerance %.0e), batch-invariant: %s%s\n", ok ? "PASS" : "FAIL",
              simd.name, dtype_name(type), panels ? " (panels)" : "", worst, tol, invariant ? "yes" : "NO",
              panels ? (rowsOk ? ", read_row == decode_row" : ", read_row DIFFERS") : "");
  return ok;
}

bool check_kv(const CpuKernels& simd) {
  float worst = 0;
  for (bool f16 : {false, true}) {
    for (int n : {1, 5, 8, 15, 16, 17, 31, 48, 64, 65, 80, 128, 130}) {
      const std::vector<float> q = random_acts(n, 3u * n), kf = random_acts(n, 5u * n), y0 = random_acts(n, 11u * n);
      std::vector<uint8_t> k(size_t(n) * 4);
      if (f16) {
        for (int i = 0; i < n; i++) {
          const uint16_t h = f32_to_fp16(kf[i]);
          std::memcpy(k.data() + 2 * i, &h, 2);
        }
      } else {
        std::memcpy(k.data(), kf.data(), 4 * size_t(n));
      }
      float mag = 0;
      for (int i = 0; i < n; i++) mag += std::fabs(q[i] * kf[i]);
      worst = std::max(worst, std::fabs(simd.dot_kv(q.data(), k.data(), n, kt(f16)) - scalar_kernels().dot_kv(q.data(), k.data(), n, kt(f16))) / mag);
      std::vector<float> ya = y0, yb = y0;
      simd.axpy_kv(0.37f, k.data(), ya.data(), n, kt(f16));
      scalar_kernels().axpy_kv(0.37f, k.data(), yb.data(), n, kt(f16));
      for (int i = 0; i < n; i++) worst = std::max(worst, std::fabs(ya[i] - yb[i]) / (std::fabs(y0[i]) + std::fabs(0.37f * kf[i])));
    }
  }
  const bool ok = worst <= 1e-6f;
  std::printf("%s %s dot_kv/axpy_kv vs scalar (f32 and f16 K/V, head dims 1..130): worst relative diff %.2e\n", ok ? "PASS" : "FAIL",
              simd.name, worst);
  return ok;
}

// The set's attend() against a double-precision softmax(q.K^T * scale) V, through a shuffled block
// table, for every head dim it takes (it must take the whole vectors 16..128), f32 and f16 K/V.
bool check_attend(const CpuKernels& simd) {
  if (!simd.attend) return true;
  double worst = 0;
  bool took = true;
  for (bool f16 : {false, true}) {
    for (int bs : {16, 5}) {
      for (int hd = 16; hd <= 128; hd += 16) {
        for (int n : {1, 4, 16, 17, 40, 300}) {
          const int blocks = (n + bs - 1) / bs, elem = f16 ? 2 : 4;
          std::vector<int32_t> table(blocks);
          for (int i = 0; i < blocks; i++) table[i] = (i * 7 + 3) % blocks;  // a permutation (7 and blocks coprime or not: checked below)
          std::vector<int32_t> used(blocks, 0);
          for (int i = 0; i < blocks; i++) used[table[i]]++;
          for (int i = 0; i < blocks; i++) if (used[i] != 1) table[i] = i;  // fall back to the identity where 7 shares a factor
          const std::vector<float> kf = random_acts(size_t(blocks) * bs * hd, 3u * hd + n), vf = random_acts(size_t(blocks) * bs * hd, 5u * hd + n);
          std::vector<float> q = random_acts(hd, 7u * hd + n);
          for (float& x : q) x *= 4;  // peaked softmax: exercises the running-max rescale
          std::vector<uint8_t> kb(kf.size() * elem), vb(vf.size() * elem);
          std::vector<float> kq(kf.size()), vq(vf.size());  // the values as stored (f16 rounds them)
          for (size_t i = 0; i < kf.size(); i++) {
            if (f16) {
              const uint16_t a = f32_to_fp16(kf[i]), b = f32_to_fp16(vf[i]);
              std::memcpy(kb.data() + 2 * i, &a, 2), std::memcpy(vb.data() + 2 * i, &b, 2);
              kq[i] = fp16_to_f32(a), vq[i] = fp16_to_f32(b);
            } else {
              std::memcpy(kb.data() + 4 * i, &kf[i], 4), std::memcpy(vb.data() + 4 * i, &vf[i], 4);
              kq[i] = kf[i], vq[i] = vf[i];
            }
          }
          const size_t stride = size_t(bs) * hd * elem;
          const KvRows k{kb.data(), table.data(), stride, bs, hd * elem, kt(f16)}, v{vb.data(), table.data(), stride, bs, hd * elem, kt(f16)};
          const float scale = 1.0f / std::sqrt(float(hd));
          std::vector<float> out(hd, NAN);
          took &= simd.attend(q.data(), k, v, n, hd, scale, out.data());
          std::vector<double> sc(n), ref(hd, 0.0);
          double mx = -1e300, sum = 0;
          const auto at = [&](const std::vector<float>& a, int p, int d) { return a[(size_t(table[p / bs]) * bs + p % bs) * hd + d]; };
          for (int p = 0; p < n; p++) {
            double dot = 0;
            for (int d = 0; d < hd; d++) dot += double(q[d]) * at(kq, p, d);
            sc[p] = dot * scale, mx = std::max(mx, sc[p]);
          }
          for (int p = 0; p < n; p++) sum += std::exp(sc[p] - mx);
          for (int p = 0; p < n; p++)
            for (int d = 0; d < hd; d++) ref[d] += std::exp(sc[p] - mx) / sum * at(vq, p, d);
          for (int d = 0; d < hd; d++) worst = std::max(worst, std::fabs(out[d] - ref[d]));  // values are O(1)
        }
      }
    }
  }
  const bool ok = took && worst <= 1e-5;  // float sums of up to 300 terms of O(1)
  std::printf("%s %s attend vs double-precision softmax (head dims 16..128, f32 and f16 K/V, block sizes 16 and 5, n 1..300): worst |diff| %.2e%s\n",
              ok ? "PASS" : "FAIL", simd.name, worst, took ? "" : ", some head dim refused");
  return ok;
}

// attend_heads() against attend() head by head, bit for bit (so a decode row gives the same output
// whichever path takes it), over a pool laid out as the KV cache is: [block][kv head][position][hd],
// with GQA groups of 1 and 4 and a shuffled block table.
bool check_attend_heads(const CpuKernels& simd) {
  if (!simd.attend_heads) return true;
  int mismatches = 0, runs = 0;
  for (bool f16 : {false, true}) {
    for (int hd : {16, 64, 128}) {
      for (auto [nHeads, nKv] : {std::pair{6, 6}, std::pair{8, 2}}) {
        for (int n : {1, 15, 16, 33, 200}) {
          const int bs = 16, elem = f16 ? 2 : 4, blocks = (n + bs - 1) / bs;
          std::vector<int32_t> table(blocks);
          for (int i = 0; i < blocks; i++) table[i] = blocks - 1 - i;
          const size_t rowBytes = size_t(hd) * elem, headStride = bs * rowBytes, blockStride = nKv * headStride;
          const std::vector<float> kf = random_acts(blocks * blockStride / elem, 11u * hd + n), vf = random_acts(blocks * blockStride / elem, 13u * hd + n);
          std::vector<uint8_t> kb(blocks * blockStride), vb(blocks * blockStride);
          for (size_t i = 0; i < kf.size(); i++) {
            if (f16) {
              const uint16_t a = f32_to_fp16(kf[i]), b = f32_to_fp16(vf[i]);
              std::memcpy(kb.data() + 2 * i, &a, 2), std::memcpy(vb.data() + 2 * i, &b, 2);
            } else {
              std::memcpy(kb.data() + 4 * i, &kf[i], 4), std::memcpy(vb.data() + 4 * i, &vf[i], 4);
            }
          }
          std::vector<float> q = random_acts(size_t(nHeads) * hd, 17u * hd + n);
          for (float& x : q) x *= 4;
          const float scale = 1.0f / std::sqrt(float(hd));
          std::vector<float> all(size_t(nHeads) * hd, NAN), one(size_t(nHeads) * hd, NAN);
          const KvRows k{kb.data(), table.data(), blockStride, bs, int(rowBytes), kt(f16)}, v{vb.data(), table.data(), blockStride, bs, int(rowBytes), kt(f16)};
          bool took = simd.attend_heads(q.data(), k, v, nHeads, nHeads / nKv, headStride, n, hd, scale, all.data());
          for (int h = 0; h < nHeads; h++) {
            const size_t off = size_t(h / (nHeads / nKv)) * headStride;
            const KvRows kh{kb.data() + off, table.data(), blockStride, bs, int(rowBytes), kt(f16)}, vh{vb.data() + off, table.data(), blockStride, bs, int(rowBytes), kt(f16)};
            took &= simd.attend(q.data() + h * hd, kh, vh, n, hd, scale, one.data() + h * hd);
          }
          runs++;
          if (!took || std::memcmp(all.data(), one.data(), all.size() * sizeof(float)) != 0) mismatches++;
        }
      }
    }
  }
  std::printf("%s %s attend_heads vs attend per head, bit for bit (head dims 16/64/128, GQA 1 and 4, f32 and f16 K/V): %d of %d differ\n",
              mismatches == 0 ? "PASS" : "FAIL", simd.name, mismatches, runs);
  return mismatches == 0;
}

}  // namespace

bool check_kernels() {
  bool ok = true;
  for (const CpuKernels* simd : simd_sets()) {
    for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_Z, DType::Q8_Z}) ok &= check_matmul(*simd, t, false);
    if (simd->panels)
      for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_Z, DType::Q8_Z}) ok &= check_matmul(*simd, t, true);
    ok &= check_kv(*simd);
    ok &= check_attend(*simd);
    ok &= check_attend_heads(*simd);
    ok &= check_row_kernels(*simd);
  }
  return ok;
}

}  // namespace flotilla::test
