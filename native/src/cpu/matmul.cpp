#include "matmul.h"

#include <algorithm>

namespace flotilla {

namespace {

constexpr int kMaxOuts = 3;
constexpr int64_t kInlineMacs = 1 << 17;

void quantize_input(ThreadPool& pool, const CpuKernels& kern, const float* x, int T, int K, uint8_t* xq) {
  const size_t ldq = kern.quant_act_bytes(K);
  if (T < 16) {
    for (int t = 0; t < T; t++) kern.quantize_act(x + size_t(t) * K, K, xq + size_t(t) * ldq);
    return;
  }
  pool.parallel_for(T, [&](int t) { kern.quantize_act(x + size_t(t) * K, K, xq + size_t(t) * ldq); });
}

// Rows per chunk: a multiple of 32, small enough for ~8 chunks per thread. 32 rows are the batched
// panel tile (2 panels of 16) and 8 row-major 4-row tiles: with chunks of an odd number of panels
// (768 rows / 16 = 48), every chunk ended in a 1-panel tile, which loads as many activations per FMA
// as the 2-panel tile does for twice the FMAs.
int chunk_rows(int totalRows, int threads) {
  const int ch = totalRows / (threads * 8);
  return std::max(32, (ch + 31) / 32 * 32);
}

}  // namespace

void matmul_parallel(ThreadPool& pool, const CpuKernels& kern, const float* x, int T, int K, uint8_t* xqScratch,
                     const MatmulOut* outs, int nOuts) {
  bool quant = false;
  int totalRows = 0;
  for (int i = 0; i < nOuts; i++) {
    quant |= is_quantized(outs[i].w->type);
    totalRows += outs[i].w->rows;
  }
  if (quant) quantize_input(pool, kern, x, T, K, xqScratch);
  const MatmulIn in{T, K, x, K, quant ? xqScratch : nullptr, kern.quant_act_bytes(K)};
  if (int64_t(totalRows) * K * T < kInlineMacs) {  // waking the pool costs more than it saves
    for (int i = 0; i < nOuts; i++) kern.matmul(*outs[i].w, in, outs[i].y, outs[i].w->rows, 0, outs[i].w->rows);
    return;
  }
  const int ch = chunk_rows(totalRows, pool.size());
  int firstChunk[kMaxOuts + 1] = {0};
  for (int i = 0; i < nOuts; i++) firstChunk[i + 1] = firstChunk[i] + (outs[i].w->rows + ch - 1) / ch;
  pool.parallel_for(firstChunk[nOuts], [&](int c) {
    int i = 0;
    while (c >= firstChunk[i + 1]) i++;
    const Weight& w = *outs[i].w;
    const int n0 = (c - firstChunk[i]) * ch;
    kern.matmul(w, in, outs[i].y, w.rows, n0, std::min(w.rows, n0 + ch));
  });
}

}  // namespace flotilla
