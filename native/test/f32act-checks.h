// CpuKernels::matmul_f32act (quantized weights x f32 activations) of every kernel set this CPU runs.
#pragma once

namespace flotilla::test {

bool check_f32act();  // prints one PASS/FAIL line per set, type and layout; true when all pass

}  // namespace flotilla::test
