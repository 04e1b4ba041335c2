// Row-wise kernels: embedding lookup, RMSNorm (with the residual add fused), RoPE, SwiGLU, f32->half.
#include <algorithm>

#include "kernels.cuh"

namespace flotilla {
namespace cuda {

namespace {

// grid (T), block 256. x (T, dim).
__global__ void embed_kernel(DevWeight emb, const int32_t* ids, float* x, int dim) {
  const int t = blockIdx.x, id = ids[t];
  for (int c = threadIdx.x; c < dim; c += blockDim.x) x[size_t(t) * dim + c] = weight_at(emb, id, c);
}

// grid (T), block 256: optional residual add, then out = w * (x / rms(x)). Sum of squares in f32.
__global__ void rmsnorm_kernel(float* x, const float* delta, const float* w, float* out, const int32_t* rows, int n, float eps) {
  __shared__ float red[32];
  const int r = rows ? rows[blockIdx.x] : blockIdx.x;
  float* xr = x + size_t(r) * n;
  float ss = 0.f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    float v = xr[i];
    if (delta) xr[i] = v = v + delta[size_t(r) * n + i];
    ss += v * v;
  }
  ss = block_sum(ss, red);
  const float inv = 1.0f / sqrtf(ss / n + eps);
  float* o = out + size_t(blockIdx.x) * n;
  for (int i = threadIdx.x; i < n; i += blockDim.x) o[i] = w[i] * (inv * xr[i]);
}

// grid (T), block 128: every (head, pair) of q and k at the token's position.
__global__ void rope_kernel(float* q, float* k, const int32_t* positions, const float* invFreq, int nHeads, int nKv, int hd, bool half) {
  const int t = blockIdx.x, pairs = hd / 2;
  const float pos = float(positions[t]);
  for (int j = threadIdx.x; j < (nHeads + nKv) * pairs; j += blockDim.x) {
    const int head = j / pairs, i = j % pairs;
    float* v = head < nHeads ? q + (size_t(t) * nHeads + head) * hd : k + (size_t(t) * nKv + head - nHeads) * hd;
    float sn, cs;
    sincosf(pos * invFreq[i], &sn, &cs);
    const int a = half ? i : 2 * i, b = half ? i + pairs : 2 * i + 1;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * cs - x1 * sn;
    v[b] = x0 * sn + x1 * cs;
  }
}

__global__ void swiglu_kernel(float* gate, const float* up, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    gate[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

__global__ void to_half_kernel(const float* src, void* dst, int64_t count, bool f16) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    if (f16) static_cast<__half*>(dst)[i] = __float2half_rn(src[i]);
    else static_cast<__nv_bfloat16*>(dst)[i] = __float2bfloat16_rn(src[i]);
  }
}

int grid_for(int64_t count) { return int(std::min<int64_t>((count + 255) / 256, 65535)); }

}  // namespace

void embed(const DevWeight& emb, const int32_t* tokenIds, int T, float* x, cudaStream_t s) {
  embed_kernel<<<T, 256, 0, s>>>(emb, tokenIds, x, emb.cols);
  FL_LAUNCHED("embed");
}

void rmsnorm(float* x, const float* delta, const float* w, float* out, int T, int n, float eps, cudaStream_t s) {
  rmsnorm_kernel<<<T, 256, 0, s>>>(x, delta, w, out, nullptr, n, eps);
  FL_LAUNCHED("rmsnorm");
}

void rmsnorm_rows(const float* x, const int32_t* rows, const float* w, float* out, int R, int n, float eps, cudaStream_t s) {
  rmsnorm_kernel<<<R, 256, 0, s>>>(const_cast<float*>(x), nullptr, w, out, rows, n, eps);
  FL_LAUNCHED("rmsnorm_rows");
}

void rope(float* q, float* k, const int32_t* positions, const float* invFreq, int T, int nHeads, int nKv, int hd, bool half, cudaStream_t s) {
  rope_kernel<<<T, 128, 0, s>>>(q, k, positions, invFreq, nHeads, nKv, hd, half);
  FL_LAUNCHED("rope");
}

void swiglu(float* gate, const float* up, int T, int n, cudaStream_t s) {
  const int64_t count = int64_t(T) * n;
  swiglu_kernel<<<grid_for(count), 256, 0, s>>>(gate, up, count);
  FL_LAUNCHED("swiglu");
}

void to_half(const float* src, void* dst, int64_t count, bool f16, cudaStream_t s) {
  to_half_kernel<<<grid_for(count), 256, 0, s>>>(src, dst, count, f16);
  FL_LAUNCHED("to_half");
}

}  // namespace cuda
}  // namespace flotilla
