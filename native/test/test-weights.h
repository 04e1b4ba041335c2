// Random weights and activations for the kernel checks and the GEMM bench.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "../src/core/weights.h"

namespace flotilla::test {

// A (rows, cols) matrix of `type` encoded from uniform(-1, 1) values (seeded).
Weight random_weight(DType type, int rows, int cols, uint32_t seed);

// n floats, uniform(-scale, scale) with a few larger outliers, as activations have.
std::vector<float> random_acts(size_t n, uint32_t seed, float scale = 1.f);

}  // namespace flotilla::test
