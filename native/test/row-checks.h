// A SIMD kernel set's row kernels (rmsnorm, swiglu, add_into, the sampler's argmax and exp sum, the
// f16 KV store) against the scalar code, and the KV cache's threaded write against its serial one.
#pragma once
#include "../src/cpu/kernels.h"

namespace flotilla::test {

bool check_row_kernels(const CpuKernels& simd);  // prints one PASS/FAIL line per check

}  // namespace flotilla::test
