// Element types of weights, and the block layouts of the quantized ones (GGUF's, byte for byte, so
// GGUF Q8_0/Q4_0 tensors are used as they lie in the file).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace flotilla {

// Q4_Z / Q8_Z: 32 weights in nibbles / unsigned bytes with an fp16 scale and an integer zero point
// each (value = d * (q - z)), what GPTQ/AWQ checkpoints with zero points are repacked into at load
// (weights-gptq.cpp).
enum class DType : uint8_t { F32, F16, BF16, Q8_0, Q4_0, Q4_Z, Q8_Z };

constexpr int kGroup = 32;  // elements per quantization group

// GGUF Q8_0: value i = fp16(d) * qs[i].
struct BlockQ8 {
  uint16_t d;
  int8_t qs[kGroup];
};
// GGUF Q4_0: element i is the low nibble of qs[i], element i+16 the high nibble; value = fp16(d) * (q - 8).
struct BlockQ4 {
  uint16_t d;
  uint8_t qs[kGroup / 2];
};
// Q4_Z: the nibbles as BlockQ4 places them, unsigned; value = fp16(d) * (q - z), z in 0..16 (GPTQ's
// v1 checkpoints store z - 1, so a zero of 0 reads back as 16).
struct BlockQ4Z {
  uint16_t d;
  uint16_t z;
  uint8_t qs[kGroup / 2];
};
// Q8_Z: unsigned bytes, value = fp16(d) * (q - z), z in 0..256 (asymmetric 8-bit GPTQ).
struct BlockQ8Z {
  uint16_t d;
  uint16_t z;
  uint8_t qs[kGroup];
};
// Activations quantized once per matmul for integer dot products against Q8/Q4 weights.
struct BlockQ8Act {
  float d;
  int8_t qs[kGroup];
};
static_assert(sizeof(BlockQ8) == 34 && sizeof(BlockQ4) == 18, "GGUF block layouts");
static_assert(sizeof(BlockQ4Z) == 20 && sizeof(BlockQ8Z) == 36, "Q4_Z / Q8_Z blocks");

inline bool is_quantized(DType t) { return t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q4_Z || t == DType::Q8_Z; }
inline int groups_of(int64_t cols) { return static_cast<int>((cols + kGroup - 1) / kGroup); }

// Bytes of one row of `cols` elements; quantized rows are padded with zeros to whole groups.
inline size_t row_bytes(DType t, int64_t cols) {
  switch (t) {
    case DType::F32: return static_cast<size_t>(cols) * 4;
    case DType::F16:
    case DType::BF16: return static_cast<size_t>(cols) * 2;
    case DType::Q8_0: return static_cast<size_t>(groups_of(cols)) * sizeof(BlockQ8);
    case DType::Q4_0: return static_cast<size_t>(groups_of(cols)) * sizeof(BlockQ4);
    case DType::Q4_Z: return static_cast<size_t>(groups_of(cols)) * sizeof(BlockQ4Z);
    case DType::Q8_Z: return static_cast<size_t>(groups_of(cols)) * sizeof(BlockQ8Z);
  }
  return 0;
}

const char* dtype_name(DType t);
bool parse_dtype(const std::string& name, DType* out);

float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);  // round to nearest even
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
uint16_t f32_to_bf16(float f);  // round to nearest even

}  // namespace flotilla
