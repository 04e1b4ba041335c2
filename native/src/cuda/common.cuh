// Shared by every .cu file: error checks that throw typed EngineErrors, warp/block reductions,
// element conversions, and the device-side weight layout.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "../core/error.h"

namespace flotilla {
namespace cuda {

// Any runtime failure: out-of-memory becomes E_OOM, everything else E_DEVICE, with where it happened.
[[noreturn]] inline void throw_cuda(cudaError_t e, const char* what) {
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  const std::string msg = std::string("CUDA: ") + what + ": " + cudaGetErrorString(e);
  if (e == cudaErrorMemoryAllocation) fail("E_OOM", msg);
  fail("E_DEVICE", msg);
}
#define FL_CUDA(call)                                            \
  do {                                                           \
    cudaError_t fl_e_ = (call);                                  \
    if (fl_e_ != cudaSuccess) ::flotilla::cuda::throw_cuda(fl_e_, #call); \
  } while (0)
#define FL_LAUNCHED(what) FL_CUDA(cudaPeekAtLastError())

// Weight element kinds on the device. Q8/Q4 are repacked at upload from GGUF blocks into separate
// arrays: quants (rows, cols) int8, or (rows, cols/2) bytes for Q4 with element 2i in the low nibble
// and 2i+1 in the high nibble of byte i (value = nibble - 8); scales (rows, cols/32) fp16.
enum class WKind : int { F32 = 0, F16 = 1, BF16 = 2, Q8 = 3, Q4 = 4 };

struct DevWeight {
  WKind kind = WKind::F32;
  int rows = 0, cols = 0;  // logical shape
  int ld = 0;              // elements per stored row: cols, or cols rounded up to 32 for Q8/Q4 (zeros)
  const void* data = nullptr;      // f32/f16/bf16 (rows, cols) or quants
  const __half* scales = nullptr;  // (rows, cols/32) for Q8/Q4
};

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over a block of up to 1024 threads; `red` holds 32 floats of shared memory. All threads get it.
__device__ __forceinline__ float block_sum(float v, float* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = lane < nw ? red[lane] : 0.f;
  return warp_sum(v);
}

constexpr int kGroupQ = 32;  // quantization group (GGUF Q8_0/Q4_0)

// Element c of row r of a weight, as f32 (any kind; quantized layouts as in common.cuh).
__device__ __forceinline__ float weight_at(const DevWeight& w, int r, int c) {
  const size_t i = size_t(r) * w.ld + c;
  switch (w.kind) {
    case WKind::F32: return static_cast<const float*>(w.data)[i];
    case WKind::F16: return __half2float(static_cast<const __half*>(w.data)[i]);
    case WKind::BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(w.data)[i]);
    case WKind::Q8: {
      const float d = __half2float(w.scales[size_t(r) * (w.ld / kGroupQ) + c / kGroupQ]);
      return d * float(static_cast<const int8_t*>(w.data)[i]);
    }
    case WKind::Q4: {
      const float d = __half2float(w.scales[size_t(r) * (w.ld / kGroupQ) + c / kGroupQ]);
      const uint8_t b = static_cast<const uint8_t*>(w.data)[i / 2];
      return d * float(int((c & 1) ? (b >> 4) : (b & 15)) - 8);
    }
  }
  return 0.f;
}


}  // namespace cuda
}  // namespace flotilla
