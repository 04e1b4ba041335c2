#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace flotilla {

const CpuKernels& select_kernels() {
  const char* force = std::getenv("FLOTILLA_FORCE_SCALAR");
  const bool scalar = force && *force && std::strcmp(force, "0") != 0;
#ifdef FLOTILLA_HAVE_AVX2
  __builtin_cpu_init();
  if (!scalar && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
    return avx2_kernels();
#endif
  (void)scalar;
  return scalar_kernels();
}

}  // namespace flotilla
