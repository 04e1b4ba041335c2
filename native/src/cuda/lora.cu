// LoRA on the CUDA backend: the per-row low-rank update the CPU backend applies (cpu/lora-apply.cpp),
// as two kernels over the step's adapter rows (Punica's BGMV shape, one row per block, which is what a
// decode batch needs; rows of one adapter are contiguous, as LoraGroups orders them):
//   shrink: u (R, rank)  = x[rows] . A^T      A (rank, in) f32 of the row's slot
//   expand: y[rows] += scale * u . B^T        B (out, rank) f32, scale per slot
// Each output element is summed in a fixed order that depends only on its row, so a row's bits do not
// depend on the batch around it. NOT WIRED YET: the CUDA backend does not upload adapters, and
// Engine::load refuses maxLoras > 0 on CUDA (E_DEVICE); these kernels compile with the rest so the
// wiring (a device copy of LoraPool's slots, the four hooks in backend.cu's layer loop) is what is left.
#include "lora.cuh"

namespace flotilla {
namespace cuda {

namespace {

constexpr int kModules = 7;
constexpr int kMaxRank = 64;

__device__ __forceinline__ int entry(const LoraTable& t, int slot, int layer, int module) {
  return (slot * t.nLayers + layer) * kModules + module;
}

// One block per adapter row i (token rows[i], slot rowSlot[i]); warp w computes u[i, j] for j = w, w + warps, ...
__global__ void shrink_kernel(LoraTable t, int layer, int module, const float* __restrict__ x, int in, const int32_t* __restrict__ rows,
                              const int32_t* __restrict__ rowSlot, float* __restrict__ u) {
  const int i = blockIdx.x, e = entry(t, rowSlot[i], layer, module), r = t.rank[e];
  const float* a = t.a[e];
  const float* xr = x + size_t(rows[i]) * in;
  const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  for (int j = threadIdx.x >> 5; j < r; j += warps) {
    float acc = 0.f;
    for (int k = lane; k < in; k += 32) acc = fmaf(a[size_t(j) * in + k], xr[k], acc);
    acc = warp_sum(acc);
    if (lane == 0) u[size_t(i) * kMaxRank + j] = acc;
  }
}

// Grid (R, ceil(out / blockDim)): y[rows[i], n] += sum_j B[n, j] u[i, j], j in order.
__global__ void expand_kernel(LoraTable t, int layer, int module, const float* __restrict__ u, const int32_t* __restrict__ rows,
                              const int32_t* __restrict__ rowSlot, float* __restrict__ y, int out) {
  const int i = blockIdx.x, n = blockIdx.y * blockDim.x + threadIdx.x;
  const int e = entry(t, rowSlot[i], layer, module), r = t.rank[e];
  __shared__ float ui[kMaxRank];
  for (int j = threadIdx.x; j < r; j += blockDim.x) ui[j] = u[size_t(i) * kMaxRank + j];
  __syncthreads();
  if (n >= out || r == 0) return;
  const float* b = t.b[e] + size_t(n) * r;
  float acc = 0.f;
  for (int j = 0; j < r; j++) acc = fmaf(b[j], ui[j], acc);
  y[size_t(rows[i]) * out + n] += t.scale[rowSlot[i]] * acc;
}

}  // namespace

void lora_apply(const LoraTable& t, int layer, int module, const float* x, int in, const int32_t* rows, const int32_t* rowSlot, int R,
                float* u, float* y, int out, cudaStream_t s) {
  if (R == 0) return;
  shrink_kernel<<<R, 256, 0, s>>>(t, layer, module, x, in, rows, rowSlot, u);
  FL_LAUNCHED("lora shrink");
  const dim3 grid(R, (out + 255) / 256);
  expand_kernel<<<grid, 256, 0, s>>>(t, layer, module, u, rows, rowSlot, y, out);
  FL_LAUNCHED("lora expand");
}

}  // namespace cuda
}  // namespace flotilla
