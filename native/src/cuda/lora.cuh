// The CUDA LoRA kernels (lora.cu): the device twin of cpu/lora-apply. Not wired into backend.cu yet.
#pragma once
#include "common.cuh"

namespace flotilla {
namespace cuda {

// Device pointers of every (slot, layer, module) matrix pair, and its rank (0: no update).
struct LoraTable {
  const float* const* a = nullptr;  // (maxLoras * nLayers * 7) each (rank, in) row-major
  const float* const* b = nullptr;  // same, each (out, rank) row-major
  const int32_t* rank = nullptr;    // same
  const float* scale = nullptr;     // (maxLoras) lora_alpha / r of each slot
  int nLayers = 0;
};

// y (T, out) += the update of `module` (core/lora.h's LoraModule order) for the R adapter rows (rows,
// rowSlot on the device); u is device scratch of R * 64 floats. Ranks above 64 are not taken.
void lora_apply(const LoraTable& t, int layer, int module, const float* x, int in, const int32_t* rows, const int32_t* rowSlot, int R,
                float* u, float* y, int out, cudaStream_t s);

}  // namespace cuda
}  // namespace flotilla
