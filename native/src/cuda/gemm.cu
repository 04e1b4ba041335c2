// y (T, N) = x (T, K) * W (N, K)^T with W in any WKind, dequantized inside the kernels.
//   T <= 8: gemv_kernel, one warp per output row streaming W once (16-byte loads) for all T tokens;
//           this is the decode path and is bound by weight bandwidth.
//   T > 8, f16/bf16 W: cuBLASLt (dlopen'ed, see cublaslt.cu) on x converted to half, else wmma_kernel.
//   T > 8, int8/int4 W: wmma_kernel (bf16 tensor cores, W dequantized into shared memory).
//   T > 8, f32 W: simt_kernel (f32 FMA tiles), so f32 models keep f32 accuracy.
#include <mma.h>

#include <algorithm>

#include "kernels.cuh"

namespace flotilla {
namespace cuda {

namespace {

// Elements k..k+7 of row n as f32; k is a multiple of 8 and the row start is 16-byte aligned.
template <WKind KIND>
__device__ __forceinline__ void load8(const DevWeight& w, int n, int k, float out[8]) {
  if constexpr (KIND == WKind::F32) {
    const float4* p = reinterpret_cast<const float4*>(static_cast<const float*>(w.data) + size_t(n) * w.ld + k);
    const float4 a = __ldg(p), b = __ldg(p + 1);
    out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w, out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
  } else if constexpr (KIND == WKind::F16 || KIND == WKind::BF16) {
    const uint4 u = __ldg(reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(w.data) + size_t(n) * w.ld + k));
    const uint32_t words[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
      if constexpr (KIND == WKind::F16) {
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&words[i]));
        out[2 * i] = f.x, out[2 * i + 1] = f.y;
      } else {
        const float2 f = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&words[i]));
        out[2 * i] = f.x, out[2 * i + 1] = f.y;
      }
    }
  } else {
    const float d = __half2float(w.scales[size_t(n) * (w.ld / kGroupQ) + k / kGroupQ]);
    if constexpr (KIND == WKind::Q8) {
      const uint2 u = __ldg(reinterpret_cast<const uint2*>(static_cast<const int8_t*>(w.data) + size_t(n) * w.ld + k));
      const int8_t* q = reinterpret_cast<const int8_t*>(&u);
#pragma unroll
      for (int i = 0; i < 8; i++) out[i] = d * float(q[i]);
    } else {
      const uint32_t u = __ldg(reinterpret_cast<const uint32_t*>(static_cast<const uint8_t*>(w.data) + (size_t(n) * w.ld + k) / 2));
#pragma unroll
      for (int i = 0; i < 8; i++) out[i] = d * float(int((u >> (4 * i)) & 15u) - 8);
    }
  }
}

// grid (ceil(N/4)), block 128: warp -> output row n, lanes stride over K in chunks of 8. NT >= T.
template <WKind KIND, int NT>
__global__ void __launch_bounds__(128) gemv_kernel(DevWeight w, const float* x, float* y, int T, int K, bool vec) {
  const int n = blockIdx.x * 4 + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (n >= w.rows) return;
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; t++) acc[t] = 0.f;
  int tail = 0;
  if (vec) {
    const int chunks = K / 8;
    for (int c = lane; c < chunks; c += 32) {
      float wv[8];
      load8<KIND>(w, n, c * 8, wv);
#pragma unroll
      for (int t = 0; t < NT; t++) {
        if (t >= T) break;
        const float4* xp = reinterpret_cast<const float4*>(x + size_t(t) * K + c * 8);
        const float4 a = xp[0], b = xp[1];
        acc[t] += wv[0] * a.x + wv[1] * a.y + wv[2] * a.z + wv[3] * a.w + wv[4] * b.x + wv[5] * b.y + wv[6] * b.z + wv[7] * b.w;
      }
    }
    tail = chunks * 8;
  }
  for (int k = tail + lane; k < K; k += 32) {
    const float wv = weight_at(w, n, k);
#pragma unroll
    for (int t = 0; t < NT; t++)
      if (t < T) acc[t] += wv * x[size_t(t) * K + k];
  }
#pragma unroll
  for (int t = 0; t < NT; t++) {
    const float v = warp_sum(acc[t]);
    if (lane == 0 && t < T) y[size_t(t) * w.rows + n] = v;
  }
}

// Tensor-core tile: block 128 (2x2 warps), 64 tokens x 64 outputs, K in steps of 32; x and W are
// converted (W dequantized) to H (bf16 or f16) while staged in shared memory. Bounds-checked.
constexpr int BM = 64, BN = 64, BK = 32, LDS = BK + 8;
template <WKind KIND, class H>
__global__ void __launch_bounds__(128) wmma_kernel(DevWeight w, const float* x, float* y, int T, int K) {
  using namespace nvcuda;
  __shared__ __align__(32) H As[BM * LDS];
  __shared__ __align__(32) H Bs[BN * LDS];
  __shared__ __align__(32) float Cs[BM * BN];
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN, warp = threadIdx.x / 32, wm = warp / 2, wn = warp % 2;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.f);
  for (int k0 = 0; k0 < K; k0 += BK) {
    for (int i = threadIdx.x; i < BM * BK; i += blockDim.x) {
      const int r = i / BK, c = i % BK, m = m0 + r, n = n0 + r, k = k0 + c;
      As[r * LDS + c] = H(m < T && k < K ? x[size_t(m) * K + k] : 0.f);
      Bs[r * LDS + c] = H(n < w.rows && k < K ? weight_at(w, n, k) : 0.f);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, H, wmma::row_major> a[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, H, wmma::col_major> b[2];
#pragma unroll
      for (int i = 0; i < 2; i++) wmma::load_matrix_sync(a[i], As + (wm * 32 + i * 16) * LDS + kk, LDS);
#pragma unroll
      for (int j = 0; j < 2; j++) wmma::load_matrix_sync(b[j], Bs + (wn * 32 + j * 16) * LDS + kk, LDS);
#pragma unroll
      for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 2; j++)
      wmma::store_matrix_sync(Cs + (wm * 32 + i * 16) * BN + wn * 32 + j * 16, acc[i][j], BN, wmma::mem_row_major);
  __syncthreads();
  for (int i = threadIdx.x; i < BM * BN; i += blockDim.x) {
    const int m = m0 + i / BN, n = n0 + i % BN;
    if (m < T && n < w.rows) y[size_t(m) * w.rows + n] = Cs[i];
  }
}

// f32 weights, T > 8: block 256, 64x64 tile, each thread 4x4 outputs, K in steps of 16.
__global__ void __launch_bounds__(256) simt_kernel(DevWeight w, const float* x, float* y, int T, int K) {
  __shared__ float As[16][BM + 1], Bs[16][BN + 1];
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN, tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const float* W = static_cast<const float*>(w.data);
  float acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += 16) {
    for (int i = threadIdx.x; i < 16 * BM; i += blockDim.x) {
      const int r = i / 16, c = i % 16, k = k0 + c;
      As[c][r] = m0 + r < T && k < K ? x[size_t(m0 + r) * K + k] : 0.f;
      Bs[c][r] = n0 + r < w.rows && k < K ? W[size_t(n0 + r) * w.ld + k] : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < 16; kk++) {
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = fmaf(As[kk][ty * 4 + i], Bs[kk][tx * 4 + j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int m = m0 + ty * 4 + i, n = n0 + tx * 4 + j;
      if (m < T && n < w.rows) y[size_t(m) * w.rows + n] = acc[i][j];
    }
}

template <WKind KIND>
void gemv(const DevWeight& w, const float* x, int T, float* y, cudaStream_t s) {
  const dim3 grid((w.rows + 3) / 4);
  const bool vec = w.cols % 8 == 0;
  switch (T <= 1 ? 1 : T <= 2 ? 2 : T <= 4 ? 4 : 8) {
    case 1: gemv_kernel<KIND, 1><<<grid, 128, 0, s>>>(w, x, y, T, w.cols, vec); break;
    case 2: gemv_kernel<KIND, 2><<<grid, 128, 0, s>>>(w, x, y, T, w.cols, vec); break;
    case 4: gemv_kernel<KIND, 4><<<grid, 128, 0, s>>>(w, x, y, T, w.cols, vec); break;
    default: gemv_kernel<KIND, 8><<<grid, 128, 0, s>>>(w, x, y, T, w.cols, vec); break;
  }
  FL_LAUNCHED("gemv");
}

template <WKind KIND, class H>
void wmma(const DevWeight& w, const float* x, int T, float* y, cudaStream_t s) {
  wmma_kernel<KIND, H><<<dim3((w.rows + BN - 1) / BN, (T + BM - 1) / BM), 128, 0, s>>>(w, x, y, T, w.cols);
  FL_LAUNCHED("wmma gemm");
}

}  // namespace

const char* gemm_path() { return lt_available() ? "cuda-cublaslt" : "cuda-wmma"; }

void gemm(const DevWeight& w, const float* x, int T, float* y, void* xh, cudaStream_t s) {
  if (T <= 8) {
    switch (w.kind) {
      case WKind::F32: return gemv<WKind::F32>(w, x, T, y, s);
      case WKind::F16: return gemv<WKind::F16>(w, x, T, y, s);
      case WKind::BF16: return gemv<WKind::BF16>(w, x, T, y, s);
      case WKind::Q8: return gemv<WKind::Q8>(w, x, T, y, s);
      case WKind::Q4: return gemv<WKind::Q4>(w, x, T, y, s);
    }
  }
  switch (w.kind) {
    case WKind::F32:
      simt_kernel<<<dim3((w.rows + BN - 1) / BN, (T + BM - 1) / BM), 256, 0, s>>>(w, x, y, T, w.cols);
      FL_LAUNCHED("simt gemm");
      return;
    case WKind::F16:
    case WKind::BF16: {
      const bool f16 = w.kind == WKind::F16;
      if (lt_available()) {
        to_half(x, xh, int64_t(T) * w.cols, f16, s);
        if (lt_gemm(w.data, xh, y, w.rows, w.cols, T, f16, s)) return;
      }
      if (f16) return wmma<WKind::F16, __half>(w, x, T, y, s);
      return wmma<WKind::BF16, __nv_bfloat16>(w, x, T, y, s);
    }
    case WKind::Q8: return wmma<WKind::Q8, __nv_bfloat16>(w, x, T, y, s);
    case WKind::Q4: return wmma<WKind::Q4, __nv_bfloat16>(w, x, T, y, s);
  }
}

}  // namespace cuda
}  // namespace flotilla
