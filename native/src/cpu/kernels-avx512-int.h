// The AVX-512 VNNI integer kernels (kernels-avx512-int.cpp), used by the AVX-512 set in kernels-avx512.cpp.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels.h"

namespace flotilla::avx512 {

size_t quant_act_bytes(int n);
void quantize_act(const float* x, int n, uint8_t* out);
// Q8_0 or Q4_0 weights (row-major or in panels) against activations from quantize_act; same contract
// as CpuKernels::matmul.
void matmul_quant(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1);

}  // namespace flotilla::avx512
