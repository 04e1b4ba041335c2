// AVX-512 kernels for quantized weights in panels against f32 activations (kernels-avx512-f32act.cpp).
#pragma once
#include "kernels.h"

namespace flotilla::avx512 {

// Q8_0, Q4_0, Q4_Z or Q8_Z weights in panels times in.x (f32; in.xq unused); same contract as
// CpuKernels::matmul (n0 a multiple of 16).
void matmul_f32act_panels(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1);

}  // namespace flotilla::avx512
