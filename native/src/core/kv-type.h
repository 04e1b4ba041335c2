// The KV pool's element type (vLLM's kv_cache_dtype) and what one cached row costs in it.
//
// I8 and Fp8 store one byte per element plus one f32 scale per (token, head) row: x ~= q * scale with
// scale = max|x| / 127 (I8, symmetric, round to nearest) or max|x| / 448 (Fp8, e4m3's largest
// finite value; CUDA only). The scale is per row rather than one per (block, head) because tokens
// enter a block one decode step at a time: a block-wide scale would have to be fixed by its first
// token (clamping louder later ones) or grow and requantize the rows already there, so the values a
// query sees would depend on how the sequence was batched or chunked (the engine promises the same
// bits alone, batched or chunked) and on whether its prefix came from the prefix cache. A row's scale
// depends on that row alone. It costs 4 bytes per head_dim bytes (68 vs 128 bytes at head_dim 64 in
// f16: 1.88x the tokens per byte; 1.94x at 128). The scales of a block's rows live inside the block,
// after its rows (kv-cache.h), so a block is still one self-contained run of bytes per (layer, K|V).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace flotilla {

enum class KvType : uint8_t { F32, F16, I8, Fp8 };

// Bytes of one element of a cached row.
inline int kv_elem_bytes(KvType t) { return t == KvType::F32 ? 4 : t == KvType::F16 ? 2 : 1; }

// Whether rows carry an f32 scale each (the 8-bit types).
inline bool kv_scaled(KvType t) { return t == KvType::I8 || t == KvType::Fp8; }

// Bytes of one head's rows of one block, its scales included: (blockSize, headDim) elements, then
// blockSize f32 scales for the 8-bit types.
inline size_t kv_head_block_bytes(KvType t, int blockSize, int headDim) {
  return size_t(blockSize) * (size_t(headDim) * kv_elem_bytes(t) + (kv_scaled(t) ? sizeof(float) : 0));
}

// "f32" | "f16" | "int8" | "fp8" (the names NativeLoadOptions.kvDtype takes).
inline const char* kv_type_name(KvType t) {
  switch (t) {
    case KvType::F32: return "f32";
    case KvType::F16: return "f16";
    case KvType::I8: return "int8";
    case KvType::Fp8: return "fp8";
  }
  return "?";
}

// f32, f16, int8, fp8 (and vLLM's spelling fp8_e4m3); false for any other name.
inline bool parse_kv_type(const std::string& s, KvType* out) {
  if (s == "f32") *out = KvType::F32;
  else if (s == "f16") *out = KvType::F16;
  else if (s == "int8") *out = KvType::I8;
  else if (s == "fp8" || s == "fp8_e4m3") *out = KvType::Fp8;
  else return false;
  return true;
}

}  // namespace flotilla
