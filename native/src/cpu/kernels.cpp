#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace flotilla {

bool cpu_runs(const char* isa) {
  if (std::strcmp(isa, "scalar") == 0) return true;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#ifdef FLOTILLA_HAVE_AVX2
  if (std::strcmp(isa, "avx2") == 0) return avx2;
#endif
#ifdef FLOTILLA_HAVE_AVX512
  if (std::strcmp(isa, "avx512") == 0)
    return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#endif
#endif
  return false;
}

const CpuKernels& select_kernels() {
  const char* force = std::getenv("FLOTILLA_FORCE_SCALAR");
  const char* isa = std::getenv("FLOTILLA_CPU_ISA");
  if ((force && *force && std::strcmp(force, "0") != 0) || (isa && std::strcmp(isa, "scalar") == 0)) return scalar_kernels();
  const bool any = !isa || !*isa || !cpu_runs(isa);  // an unknown or unsupported name: the best this CPU runs
#ifdef FLOTILLA_HAVE_AVX512
  if ((any || std::strcmp(isa, "avx512") == 0) && cpu_runs("avx512")) return avx512_kernels();
#endif
#ifdef FLOTILLA_HAVE_AVX2
  if ((any || std::strcmp(isa, "avx2") == 0) && cpu_runs("avx2")) return avx2_kernels();
#endif
  return scalar_kernels();
}

}  // namespace flotilla
