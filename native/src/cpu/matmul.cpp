#include "matmul.h"

#include <algorithm>
#include <vector>

namespace flotilla {

namespace {

constexpr int kMaxOuts = 3;
constexpr int64_t kInlineMacs = 1 << 17;

// perm (GPTQ desc_act, weights.h): row t is quantized as x_t[perm[0]], x_t[perm[1]], ... — the order the
// weight's columns are stored in — through a per-thread row of K floats (grown once, not per step).
void quantize_input(ThreadPool& pool, const CpuKernels& kern, const float* x, int T, int K, uint8_t* xq,
                    const std::vector<int32_t>& perm) {
  const size_t ldq = kern.quant_act_bytes(K);
  const auto one = [&](int t) {
    const float* row = x + size_t(t) * K;
    if (!perm.empty()) {
      thread_local std::vector<float> gathered;
      if (gathered.size() < size_t(K)) gathered.resize(K);
      for (int k = 0; k < K; k++) gathered[k] = row[perm[k]];
      row = gathered.data();
    }
    kern.quantize_act(row, K, xq + size_t(t) * ldq);
  };
  if (T < 16) {
    for (int t = 0; t < T; t++) one(t);
    return;
  }
  pool.parallel_for(T, one);
}

// activations 'f32' with an act-order weight: row t gathered as x_t[perm[0]], x_t[perm[1]], ... into out.
void gather_input(ThreadPool& pool, const float* x, int T, int K, float* out, const std::vector<int32_t>& perm) {
  const auto one = [&](int t) {
    const float* row = x + size_t(t) * K;
    float* o = out + size_t(t) * K;
    for (int k = 0; k < K; k++) o[k] = row[perm[k]];
  };
  if (T < 16) {
    for (int t = 0; t < T; t++) one(t);
    return;
  }
  pool.parallel_for(T, one);
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
                     const MatmulOut* outs, int nOuts, bool f32Act) {
  bool quant = false, samePerm = true;
  int totalRows = 0;
  for (int i = 0; i < nOuts; i++) {
    quant |= is_quantized(outs[i].w->type);
    samePerm &= outs[i].w->inPerm == outs[0].w->inPerm;  // GPTQ's act order is the same for q|k|v (one input, one Hessian)
    totalRows += outs[i].w->rows;
  }
  if (!samePerm) {  // the weights want their input in different orders: one pass each
    for (int i = 0; i < nOuts; i++) matmul_parallel(pool, kern, x, T, K, xqScratch, outs + i, 1, f32Act);
    return;
  }
  MatmulIn in{T, K, x, K, nullptr, kern.quant_act_bytes(K)};
  if (quant && f32Act && !outs[0].w->inPerm.empty()) {
    gather_input(pool, x, T, K, reinterpret_cast<float*>(xqScratch), outs[0].w->inPerm);
    in.x = reinterpret_cast<const float*>(xqScratch);
  } else if (quant && !f32Act) {
    quantize_input(pool, kern, x, T, K, xqScratch, outs[0].w->inPerm);
    in.xq = xqScratch;
  }
  // each weight's kernel: f32 activations against a quantized weight, else the set's matmul
  const auto mm = [&](const Weight& w) { return f32Act && is_quantized(w.type) ? kern.matmul_f32act : kern.matmul; };
  if (int64_t(totalRows) * K * T < kInlineMacs) {  // waking the pool costs more than it saves
    for (int i = 0; i < nOuts; i++) mm(*outs[i].w)(*outs[i].w, in, outs[i].y, outs[i].w->rows, 0, outs[i].w->rows);
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
    mm(w)(w, in, outs[i].y, w.rows, n0, std::min(w.rows, n0 + ch));
  });
}

}  // namespace flotilla
