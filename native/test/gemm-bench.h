// engine-test --gemm: the matmul driver alone on Llama-110M shapes, every kernel set this CPU runs
// side by side in one run (rounds interleaved, so machine load hits them alike): GFLOPS per
// tokens-per-step, and for one token the weight bytes read per second.
#pragma once

namespace flotilla::test {

void bench_gemm(int threads, int rounds);
// engine-test --gemm-layer: one 110M layer's f32 panel matmuls as the CPU backend calls them, by tokens per step.
void bench_layer_gemm(int threads, int rounds);

}  // namespace flotilla::test
