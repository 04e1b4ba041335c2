// engine-test's f32-activation checks (test/f32act-checks.cpp) on the AVX-512 panel kernel compiled
// against SIMDe's emulation (immintrin.h here), for machines without AVX-512. Built by run.sh.
#include <cstdio>

#include "../../src/cpu/kernels-f32act.h"
#include "../../test/f32act-checks.h"

namespace flotilla::avx512emu {
void matmul_f32act_panels(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1);
}

namespace {

// The AVX-512 set's dispatch (kernels-avx512.cpp): panels through the kernel, rows decoded.
void matmul_f32act(const flotilla::Weight& w, const flotilla::MatmulIn& in, float* y, int ldy, int n0, int n1) {
  if (w.panels) return flotilla::avx512emu::matmul_f32act_panels(w, in, y, ldy, n0, n1);
  flotilla::matmul_f32act_decoded(flotilla::scalar_kernels().matmul, w, in, y, ldy, n0, n1);
}

}  // namespace

int main() {
  flotilla::CpuKernels k = flotilla::scalar_kernels();
  k.name = "avx512 (SIMDe-emulated)";
  k.panels = true;
  k.matmul_f32act = matmul_f32act;
  const bool ok = flotilla::test::check_f32act_set(k);
  std::printf("%s\n", ok ? "all passed" : "FAILED");
  return ok ? 0 : 1;
}
