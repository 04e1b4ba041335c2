// Row-wise elementwise steps of the Llama block. Each row's result depends only on that row.
#pragma once
#include "../core/load-spec.h"

namespace flotilla {

// out = x / rms(x) * w, over n elements.
void rmsnorm(float* out, const float* x, const float* w, int n, float eps);

// cosSin (headDim) = cos(pos * invFreq[i]) for i < half, then the sines; invFreq (half = headDim / 2) =
// theta^(-2i / headDim). Once per token and step: every layer rotates by the same angles.
void rope_angles(int pos, const float* invFreq, int half, float* cosSin);

// Rotates q (nHeads heads) and k (nKvHeads heads) of one token in place by rope_angles' cosSin.
void rope(float* q, float* k, const float* cosSin, const ModelConfig& c);

// gate = silu(gate) * up, over n elements.
void swiglu(float* gate, const float* up, int n);

// x += y, over n elements.
void add_into(float* x, const float* y, int n);

}  // namespace flotilla
