// The CUDA backend as the rest of the engine sees it: plain C++, no CUDA headers, so core/ and the
// addon compile with g++ alone. Defined in src/cuda/*.cu, linked only when FLOTILLA_HAVE_CUDA is set.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "../backend.h"

namespace flotilla {

// Empty when a usable device (sm_80 or newer, a driver new enough for this runtime) is present;
// otherwise why not, in words ("no CUDA device ...", "driver too old ...", "compute capability 7.5 ...").
std::string cuda_unavailable_reason();

// Builds the CUDA backend: uploads the weights, measures activation memory with a warm-up step and
// sizes the KV pool (o.numBlocks > 0 wins; else o.kvCacheBytes when given; else gpuMemoryUtilization
// of the device). Throws E_DEVICE / E_OOM.
std::unique_ptr<Backend> make_cuda_backend(const ModelWeights& w, const BackendOptions& o);

// Device-to-device copy bandwidth in bytes/s (read + write traffic of a `bytes` copy, best of a few).
double cuda_copy_bandwidth(size_t bytes);

}  // namespace flotilla
