// CpuKernels::matmul_f32act (quantized weights x f32 activations) of every kernel set this CPU runs.
#pragma once

namespace flotilla {
struct CpuKernels;
}

namespace flotilla::test {

bool check_f32act();  // prints one PASS/FAIL line per set, type and layout; true when all pass
// The same checks for one set (also for a set assembled by hand, as tools/avx512-emulated does).
bool check_f32act_set(const CpuKernels& k);

}  // namespace flotilla::test
