// What this machine offers: instruction sets, cores, and measured memory read bandwidth (the
// bandwidth bound that benchmarks set decode speed beside).
#pragma once
#include <cstddef>

namespace flotilla {

struct CpuFeatures {
  bool avx2, fma, f16c;
  // AVX-512 F/BW/DQ/VL with VNNI: what the avx512 kernel set needs.
  bool avx512;
  int threads;
};

CpuFeatures cpu_features();

// Bytes/s reading a buffer of `bytes` with every core, best of a few passes.
double measure_read_bandwidth(size_t bytes);

}  // namespace flotilla
