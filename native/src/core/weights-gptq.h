// GPTQ and AWQ linear layers (Hugging Face layouts) repacked once at load into the engine's int4/int8
// blocks of 32 (dtype.h), never dequantized to floats:
//   GPTQ: qweight int32 (K / p, N), p = 32 / bits values per word along the input dim, value j of a
//         word at bits j*bits; qzeros int32 (G, N / p) along the output dim; scales (G, N); g_idx int32
//         (K), the group of each input (act order with desc_act; absent or i / groupSize otherwise).
//         Stored zeros are zero - 1 in v1 checkpoints (zeroOffset 1), as vLLM's kernels read them.
//   AWQ (GEMM): qweight int32 (K, N / 8) along the output dim, output 8c + j at nibble kAwqNibble[j]
//         (AutoAWQ's order 0,2,4,6,1,3,5,7); qzeros int32 (G, N / 8) the same; scales (G, N).
//   value(k, n) = scale(g, n) * (q(k, n) - zero(g, n)), g the group of input k; G = ceil(K / groupSize).
// A row of the engine's weight is one output n; each block of 32 inputs takes its group's scale and
// zero (group sizes are multiples of 32, so a block never straddles two). Every zero 8 (4-bit) or 128
// (8-bit): Q4_0 / Q8_0, the engine's own kernels; other zeros: Q4_Z / Q8_Z. desc_act: the inputs are sorted by
// group (stable), so groups are contiguous again; the weight keeps that column order in inPerm and the
// matmul gathers its input in the same order (matmul.cpp) — a reordering of the sum, so exact.
#pragma once
#include <memory>
#include <vector>

#include "load-spec.h"
#include "mapped-file.h"
#include "weights.h"

namespace flotilla {

class ThreadPool;

// Checks the parts of a packed tensor of logical shape (rows = outputs, cols = inputs): present, int32
// or float as they must be, shaped as the scheme implies, inside their files. Throws E_SHAPE / E_DTYPE /
// E_RANGE naming the part by its checkpoint name.
void validate_packed(const TensorSpec& t, int64_t rows, int64_t cols, const std::vector<std::unique_ptr<MappedFile>>& files);

// Repacks a validated packed tensor into w (rows, cols, type, an owned row-major buffer, inPerm).
// Throws E_SHAPE for a g_idx out of range or groups that are not whole blocks of 32.
void repack_packed(const TensorSpec& t, int rows, int cols, const std::vector<std::unique_ptr<MappedFile>>& files,
                   ThreadPool& pool, Weight& w);

}  // namespace flotilla
