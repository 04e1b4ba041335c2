// Device copies of the model weights and the step's device buffers. Host-only C++ over the CUDA
// runtime; used by backend.cu. Every allocation goes through DeviceArena so a failure frees what
// was taken and reports E_OOM with what was being allocated.
#pragma once
#include <cstdint>
#include <vector>

#include "../core/weights.h"
#include "common.cuh"

namespace flotilla {
namespace cuda {

class DeviceArena {
 public:
  DeviceArena() = default;
  DeviceArena(const DeviceArena&) = delete;
  ~DeviceArena() { release(); }
  void* alloc(size_t bytes, const char* what);
  void free(void* p);  // one allocation, early (e.g. the warm-up KV pool)
  void release();
  size_t bytes() const { return bytes_; }

 private:
  std::vector<std::pair<void*, size_t>> blocks_;
  size_t bytes_ = 0;
};

struct DevLayer {
  const float *attnNorm, *ffnNorm;
  DevWeight wq, wk, wv, wo, w1, w2, w3;
};

struct DevModel {
  DevWeight tok, classifier;
  const float* norm;
  std::vector<DevLayer> layers;
  size_t bytes = 0;
};

// Copies every weight to the device (Q8_0/Q4_0 blocks repacked as common.cuh describes).
DevModel upload_weights(const ModelWeights& w, DeviceArena& arena, cudaStream_t s);

}  // namespace cuda
}  // namespace flotilla
