// Each SIMD kernel set this CPU runs (avx2, avx512) against the scalar kernels on odd shapes, and
// each set against itself for batch invariance (a token's output is the same bits alone or in a batch).
#pragma once

namespace flotilla::test {

bool check_kernels();  // prints one PASS/FAIL line per check; true when all pass

}  // namespace flotilla::test
