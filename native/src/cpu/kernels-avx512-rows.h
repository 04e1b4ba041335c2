// The AVX-512 set's row-wise kernels (kernels-avx512-rows.cpp): the elementwise steps of the Llama
// block, the sampler's passes over a logits row, and the KV cache's f32 -> f16 store. Each computes a
// row from that row alone, in an order fixed by n, so batch size and thread never change a result.
#pragma once
#include <cstdint>

namespace flotilla::avx512 {

void rmsnorm(float* out, const float* x, const float* w, int n, float eps);
void swiglu(float* gate, const float* up, int n);
void add_into(float* x, const float* y, int n);
int32_t argmax(const float* x, int n);
double sum_exp(const float* x, int n, float shift);
void to_f16(const float* x, uint16_t* out, int n);

}  // namespace flotilla::avx512
