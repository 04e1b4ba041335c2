// Load-time conversions between f32 rows and every weight DType (scalar; runs once per weight).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "weights.h"

namespace flotilla {

namespace {

void quantize_q8(const float* x, int n, BlockQ8* out) {
  for (int g = 0; g < n; g++, x += kGroup) {
    float amax = 0;
    for (int i = 0; i < kGroup; i++) amax = std::max(amax, std::fabs(x[i]));
    uint16_t d16 = f32_to_fp16(amax / 127.f);
    float d = fp16_to_f32(d16);
    float id = d != 0 ? 1.f / d : 0.f;
    out[g].d = d16;
    for (int i = 0; i < kGroup; i++) {
      float q = std::nearbyint(x[i] * id);
      out[g].qs[i] = static_cast<int8_t>(std::min(127.f, std::max(-127.f, q)));
    }
  }
}

// Q4_0 with a searched scale (as llama.cpp's make_qx_quants): try scales around max/-8, round, refit
// the scale by least squares, keep the assignment with the smallest squared error. Load time only.
void quantize_q4_group(const float* x, BlockQ4* out) {
  float amax = 0, vmax = 0;
  for (int i = 0; i < kGroup; i++) {
    if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), vmax = x[i];
  }
  int best[kGroup] = {0};
  float bestD = 0, bestErr = INFINITY;
  for (int step = -10; step <= 10 && amax > 0; step++) {
    const float id = (-8.f + 0.1f * step) / vmax;
    int q[kGroup];
    float sxq = 0, sqq = 0;
    for (int i = 0; i < kGroup; i++) {
      q[i] = std::min(7, std::max(-8, static_cast<int>(std::nearbyint(x[i] * id))));
      sxq += x[i] * q[i];
      sqq += float(q[i] * q[i]);
    }
    if (sqq == 0) continue;
    const float d = fp16_to_f32(f32_to_fp16(sxq / sqq));
    float err = 0;
    for (int i = 0; i < kGroup; i++) err += (x[i] - d * q[i]) * (x[i] - d * q[i]);
    if (err < bestErr) {
      bestErr = err, bestD = d;
      std::memcpy(best, q, sizeof q);
    }
  }
  out->d = f32_to_fp16(bestD);
  for (int i = 0; i < kGroup / 2; i++)
    out->qs[i] = static_cast<uint8_t>((best[i] + 8) | ((best[i + kGroup / 2] + 8) << 4));
}

void quantize_q4(const float* x, int n, BlockQ4* out) {
  for (int g = 0; g < n; g++) quantize_q4_group(x + g * kGroup, out + g);
}

// Q4_Z by round to nearest between each group's min and max (a weight held as q4_z from another type).
void quantize_q4z(const float* x, int n, BlockQ4Z* out) {
  for (int g = 0; g < n; g++, x += kGroup) {
    float lo = 0, hi = 0;  // the range includes 0, so a zero stays exact
    for (int i = 0; i < kGroup; i++) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
    const uint16_t d16 = f32_to_fp16((hi - lo) / 15.f);
    const float d = fp16_to_f32(d16), id = d != 0 ? 1.f / d : 0.f;
    const int z = std::min(15, std::max(0, static_cast<int>(std::nearbyint(-lo * id))));
    out[g].d = d16;
    out[g].z = static_cast<uint16_t>(z);
    int q[kGroup];
    for (int i = 0; i < kGroup; i++) q[i] = std::min(15, std::max(0, static_cast<int>(std::nearbyint(x[i] * id)) + z));
    for (int i = 0; i < kGroup / 2; i++) out[g].qs[i] = static_cast<uint8_t>(q[i] | (q[i + kGroup / 2] << 4));
  }
}

// Q8_Z likewise, 256 levels.
void quantize_q8z(const float* x, int n, BlockQ8Z* out) {
  for (int g = 0; g < n; g++, x += kGroup) {
    float lo = 0, hi = 0;
    for (int i = 0; i < kGroup; i++) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
    const uint16_t d16 = f32_to_fp16((hi - lo) / 255.f);
    const float d = fp16_to_f32(d16), id = d != 0 ? 1.f / d : 0.f;
    const int z = std::min(255, std::max(0, static_cast<int>(std::nearbyint(-lo * id))));
    out[g].d = d16;
    out[g].z = static_cast<uint16_t>(z);
    for (int i = 0; i < kGroup; i++)
      out[g].qs[i] = static_cast<uint8_t>(std::min(255, std::max(0, static_cast<int>(std::nearbyint(x[i] * id)) + z)));
  }
}

}  // namespace

void decode_row(DType type, const uint8_t* src, int cols, float* out) {
  switch (type) {
    case DType::F32: std::memcpy(out, src, static_cast<size_t>(cols) * 4); return;
    case DType::F16:
      for (int i = 0; i < cols; i++) out[i] = fp16_to_f32(static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8)));
      return;
    case DType::BF16:
      for (int i = 0; i < cols; i++) out[i] = bf16_to_f32(static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8)));
      return;
    case DType::Q8_0: {
      BlockQ8 b;
      for (int g = 0; g * kGroup < cols; g++) {
        std::memcpy(&b, src + g * sizeof(BlockQ8), sizeof b);
        float d = fp16_to_f32(b.d);
        for (int i = 0; i < kGroup && g * kGroup + i < cols; i++) out[g * kGroup + i] = d * b.qs[i];
      }
      return;
    }
    case DType::Q4_0: {
      BlockQ4 b;
      for (int g = 0; g * kGroup < cols; g++) {
        std::memcpy(&b, src + g * sizeof(BlockQ4), sizeof b);
        float d = fp16_to_f32(b.d);
        for (int i = 0; i < kGroup && g * kGroup + i < cols; i++) {
          int q = i < kGroup / 2 ? (b.qs[i] & 0xf) : (b.qs[i - kGroup / 2] >> 4);
          out[g * kGroup + i] = d * static_cast<float>(q - 8);
        }
      }
      return;
    }
    case DType::Q4_Z: {
      BlockQ4Z b;
      for (int g = 0; g * kGroup < cols; g++) {
        std::memcpy(&b, src + g * sizeof(BlockQ4Z), sizeof b);
        const float d = fp16_to_f32(b.d);
        for (int i = 0; i < kGroup && g * kGroup + i < cols; i++) {
          const int q = i < kGroup / 2 ? (b.qs[i] & 0xf) : (b.qs[i - kGroup / 2] >> 4);
          out[g * kGroup + i] = d * static_cast<float>(q - int(b.z));
        }
      }
      return;
    }
    case DType::Q8_Z: {
      BlockQ8Z b;
      for (int g = 0; g * kGroup < cols; g++) {
        std::memcpy(&b, src + g * sizeof(BlockQ8Z), sizeof b);
        const float d = fp16_to_f32(b.d);
        for (int i = 0; i < kGroup && g * kGroup + i < cols; i++) out[g * kGroup + i] = d * static_cast<float>(int(b.qs[i]) - int(b.z));
      }
      return;
    }
  }
}

// `in` must hold groups_of(cols) * 32 floats for quantized types; the padding must be zero.
void encode_row(DType type, const float* in, int cols, uint8_t* dst) {
  switch (type) {
    case DType::F32: std::memcpy(dst, in, static_cast<size_t>(cols) * 4); return;
    case DType::F16: {
      auto* o = reinterpret_cast<uint16_t*>(dst);
      for (int i = 0; i < cols; i++) o[i] = f32_to_fp16(in[i]);
      return;
    }
    case DType::BF16: {
      auto* o = reinterpret_cast<uint16_t*>(dst);
      for (int i = 0; i < cols; i++) o[i] = f32_to_bf16(in[i]);
      return;
    }
    case DType::Q8_0: quantize_q8(in, groups_of(cols), reinterpret_cast<BlockQ8*>(dst)); return;
    case DType::Q4_0: quantize_q4(in, groups_of(cols), reinterpret_cast<BlockQ4*>(dst)); return;
    case DType::Q4_Z: quantize_q4z(in, groups_of(cols), reinterpret_cast<BlockQ4Z*>(dst)); return;
    case DType::Q8_Z: quantize_q8z(in, groups_of(cols), reinterpret_cast<BlockQ8Z*>(dst)); return;
  }
}

}  // namespace flotilla
