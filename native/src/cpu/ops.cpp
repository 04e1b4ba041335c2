#include "ops.h"

#include <cmath>

namespace flotilla {

void rmsnorm(float* out, const float* x, const float* w, int n, float eps) {
  float ss = 0;
  for (int i = 0; i < n; i++) ss += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(ss / n + eps);
  for (int i = 0; i < n; i++) out[i] = w[i] * (inv * x[i]);
}

namespace {

void rotate_heads(float* v, int nHeads, int headDim, const float* cosv, const float* sinv, RopeLayout layout) {
  const int half = headDim / 2;
  for (int h = 0; h < nHeads; h++) {
    float* x = v + h * headDim;
    for (int i = 0; i < half; i++) {
      // interleaved pairs (2i, 2i+1) as llama2.c/GGUF; half-split pairs (i, i + headDim/2) as Hugging Face
      const int a = layout == RopeLayout::Interleaved ? 2 * i : i;
      const int b = layout == RopeLayout::Interleaved ? 2 * i + 1 : i + half;
      const float x0 = x[a], x1 = x[b];
      x[a] = x0 * cosv[i] - x1 * sinv[i];
      x[b] = x0 * sinv[i] + x1 * cosv[i];
    }
  }
}

}  // namespace

void rope_angles(int pos, const float* invFreq, int half, float* cosSin) {
  for (int i = 0; i < half; i++) {
    const float angle = static_cast<float>(pos) * invFreq[i];
    cosSin[i] = std::cos(angle);
    cosSin[half + i] = std::sin(angle);
  }
}

void rope(float* q, float* k, const float* cosSin, const ModelConfig& c) {
  const int half = c.headDim() / 2;
  rotate_heads(q, c.nHeads, c.headDim(), cosSin, cosSin + half, c.ropeLayout);
  rotate_heads(k, c.nKvHeads, c.headDim(), cosSin, cosSin + half, c.ropeLayout);
}

void swiglu(float* gate, const float* up, int n) {
  for (int i = 0; i < n; i++) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add_into(float* x, const float* y, int n) {
  for (int i = 0; i < n; i++) x[i] += y[i];
}

}  // namespace flotilla
