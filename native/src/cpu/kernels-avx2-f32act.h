// The AVX2 set's kernel for quantized row-major weights against f32 activations (kernels-avx2-f32act.cpp).
#pragma once
#include "kernels.h"

namespace flotilla::avx2 {

// Q8_0, Q4_0, Q4_Z or Q8_Z rows times in.x (f32; in.xq unused); CpuKernels::matmul's contract.
void matmul_f32act_rows(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1);

}  // namespace flotilla::avx2
