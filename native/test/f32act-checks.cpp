// Each set's matmul_f32act, row-major and (AVX-512) in panels, on odd shapes against a double-precision
// product of the decoded weights (decode_row: d * (q - z)) with the unquantized activations: only f32
// rounding may separate them. And batch invariance: every token alone gives the bits it got in a batch,
// whatever the split of the rows.
#include "f32act-checks.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "../src/core/thread-pool.h"
#include "../src/cpu/kernels.h"
#include "test-weights.h"

namespace flotilla::test {

namespace {

std::vector<float> run(const CpuKernels& kern, const Weight& w, const float* x, int T, int split) {
  const MatmulIn in{T, w.cols, x, w.cols, nullptr, 0};
  std::vector<float> y(size_t(T) * w.rows, NAN);
  kern.matmul_f32act(w, in, y.data(), w.rows, 0, split);
  kern.matmul_f32act(w, in, y.data(), w.rows, split, w.rows);
  return y;
}

bool check(const CpuKernels& kern, DType type, bool panels) {
  struct Shape {
    int rows, cols;
  };
  const Shape shapes[] = {{1, 1}, {3, 7}, {17, 32}, {6, 33}, {9, 64}, {21, 65}, {33, 257}, {67, 777}};
  const int tokens[] = {1, 2, 3, 5, 8, 9, 13, 31, 70};
  const double tol = 1e-6;  // of sum |w_k x_k|: f32 accumulation over <= 777 products
  ThreadPool pool(2);
  double worst = 0;
  bool invariant = true;
  for (const Shape& s : shapes) {
    const Weight w = random_weight(type, s.rows, s.cols, 5u * s.rows + s.cols);
    Weight wk = random_weight(type, s.rows, s.cols, 5u * s.rows + s.cols);
    if (panels) to_panels(wk, pool);
    if (panels != wk.panels) invariant = false;
    std::vector<float> dec(size_t(s.rows) * s.cols);
    for (int n = 0; n < s.rows; n++) decode_row(type, w.row(n), s.cols, dec.data() + size_t(n) * s.cols);
    const auto split = [&](int n) { return panels ? n / kPanel * kPanel : n; };
    for (int T : tokens) {
      const std::vector<float> x = random_acts(size_t(T) * s.cols, 13u * T + s.cols);
      const std::vector<float> y = run(kern, wk, x.data(), T, split(s.rows / 2));
      for (int t = 0; t < T; t++)
        for (int n = 0; n < s.rows; n++) {
          double ref = 0, mag = 0;
          for (int k = 0; k < s.cols; k++) {
            const double p = double(dec[size_t(n) * s.cols + k]) * x[size_t(t) * s.cols + k];
            ref += p, mag += std::fabs(p);
          }
          const float v = y[size_t(t) * s.rows + n];
          worst = std::isfinite(v) ? std::max(worst, std::fabs(v - ref) / (mag + 1e-30)) : INFINITY;
        }
      for (int t = 0; t < T; t += std::max(1, T / 3)) {
        const std::vector<float> one = run(kern, wk, x.data() + size_t(t) * s.cols, 1, split(s.rows - 1));
        invariant &= std::memcmp(one.data(), y.data() + size_t(t) * s.rows, sizeof(float) * s.rows) == 0;
      }
    }
  }
  const bool ok = worst <= tol && invariant;
  std::printf("%s %s matmul_f32act %s%s vs f64 dequantized: worst |diff| / sum|w*x| = %.2e (tolerance %.0e), batch-invariant: %s\n",
              ok ? "PASS" : "FAIL", kern.name, dtype_name(type), panels ? " (panels)" : "", worst, tol, invariant ? "yes" : "NO");
  return ok;
}

}  // namespace

bool check_f32act() {
  std::vector<const CpuKernels*> sets = {&scalar_kernels()};
#ifdef FLOTILLA_HAVE_AVX2
  if (cpu_runs("avx2")) sets.push_back(&avx2_kernels());
#endif
#ifdef FLOTILLA_HAVE_AVX512
  if (cpu_runs("avx512")) sets.push_back(&avx512_kernels());
#endif
  bool ok = true;
  for (const CpuKernels* k : sets) ok &= check_f32act_set(*k);
  return ok;
}

bool check_f32act_set(const CpuKernels& k) {
  bool ok = true;
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_Z, DType::Q8_Z}) {
    ok &= check(k, t, false);
    if (k.panels) ok &= check(k, t, true);
  }
  return ok;
}

}  // namespace flotilla::test
