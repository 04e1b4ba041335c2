#include "kernel-checks.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../src/cpu/kernels.h"
#include "test-weights.h"

namespace flotilla::test {

namespace {

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

bool check_matmul(const CpuKernels& simd, DType type) {
  const Shape shapes[] = {{1, 1}, {3, 7}, {5, 31}, {17, 32}, {6, 33}, {13, 63}, {9, 64}, {21, 65}, {7, 100}, {11, 129}, {33, 257}, {67, 777}};
  const int tokens[] = {1, 2, 3, 4, 5, 6, 7, 8, 13, 31, 64, 65, 70};
  // f32/f16/bf16 differ from scalar by FMA and summation order; the integer kernels share exact
  // integer group sums and differ only in how the scaled group sums are added (measured: ~1.5e-7).
  const float tol = 5e-7f;
  float worst = 0;
  bool invariant = true;
  for (const Shape& s : shapes) {
    const Weight w = random_weight(type, s.rows, s.cols, 7u * s.rows + s.cols);
    for (int T : tokens) {
      const std::vector<float> x = random_acts(size_t(T) * s.cols, 31u * T + s.cols);
      const std::vector<float> a = run_matmul(simd, w, x, T, s.rows / 2), b = run_matmul(scalar_kernels(), w, x, T, s.rows / 3);
      const std::vector<float> m = magnitudes(w, x, T);
      for (size_t i = 0; i < a.size(); i++) {
        const float err = std::fabs(a[i] - b[i]) / (m[i] + 1e-30f);
        worst = std::isfinite(a[i]) ? std::max(worst, err) : INFINITY;
      }
      // every token alone gives the same bits as in the batch, whatever the split
      for (int t = 0; t < T; t += std::max(1, T / 3)) {
        const std::vector<float> xt(x.begin() + size_t(t) * s.cols, x.begin() + size_t(t + 1) * s.cols);
        const std::vector<float> one = run_matmul(simd, w, xt, 1, s.rows - 1);
        invariant &= std::memcmp(one.data(), a.data() + size_t(t) * s.rows, sizeof(float) * s.rows) == 0;
      }
    }
  }
  const bool ok = worst <= tol && invariant;
  std::printf("%s %s matmul %s vs scalar: worst |diff| / sum|w*x| = %.2e (tolerance %.0e), batch-invariant: %s\n", ok ? "PASS" : "FAIL",
              simd.name, dtype_name(type), worst, tol, invariant ? "yes" : "NO");
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
      worst = std::max(worst, std::fabs(simd.dot_kv(q.data(), k.data(), n, f16) - scalar_kernels().dot_kv(q.data(), k.data(), n, f16)) / mag);
      std::vector<float> ya = y0, yb = y0;
      simd.axpy_kv(0.37f, k.data(), ya.data(), n, f16);
      scalar_kernels().axpy_kv(0.37f, k.data(), yb.data(), n, f16);
      for (int i = 0; i < n; i++) worst = std::max(worst, std::fabs(ya[i] - yb[i]) / (std::fabs(y0[i]) + std::fabs(0.37f * kf[i])));
    }
  }
  const bool ok = worst <= 1e-6f;
  std::printf("%s %s dot_kv/axpy_kv vs scalar (f32 and f16 K/V, head dims 1..130): worst relative diff %.2e\n", ok ? "PASS" : "FAIL",
              simd.name, worst);
  return ok;
}

}  // namespace

bool check_kernels() {
  bool ok = true;
  for (const CpuKernels* simd : simd_sets()) {
    for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) ok &= check_matmul(*simd, t);
    ok &= check_kv(*simd);
  }
  return ok;
}

}  // namespace flotilla::test
