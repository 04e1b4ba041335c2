// Quantized row-major weights against f32 activations for every kernel set (kernels-f32act.cpp).
#pragma once
#include "kernels.h"

namespace flotilla {

using MatmulFn = void (*)(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1);

// y = W x for a quantized row-major weight and f32 activations (in.x): up to 4 rows at a time are
// decoded (decode_row: value = d * (q - z) in f32, what a dequantized f32 checkpoint holds) into a
// per-thread buffer and handed to the set's own f32 matmul, so the result is that kernel's f32 product
// of the dequantized rows, and as batch-invariant as it. The weights stay quantized in memory.
void matmul_f32act_decoded(MatmulFn floatMatmul, const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1);

}  // namespace flotilla
