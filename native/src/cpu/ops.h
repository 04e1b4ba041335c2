// Row-wise elementwise steps of the Llama block. Each row's result depends only on that row.
#pragma once
#include "../core/load-spec.h"

namespace flotilla {

// out = x / rms(x) * w, over n elements.
void rmsnorm(float* out, const float* x, const float* w, int n, float eps);

// Rotates q (nHeads heads) and k (nKvHeads heads) of one token at `pos` in place.
// invFreq: (headDim / 2) = theta^(-2i / headDim).
void rope(float* q, float* k, int pos, const float* invFreq, const ModelConfig& c);

// gate = silu(gate) * up, over n elements.
void swiglu(float* gate, const float* up, int n);

// x += y, over n elements.
void add_into(float* x, const float* y, int n);

}  // namespace flotilla
