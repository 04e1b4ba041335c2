#include "lora-apply.h"

#include <algorithm>
#include <cstring>

namespace flotilla {

namespace {

// Output columns per expand task: a whole module's B per group when there are groups enough to keep the
// threads busy (one sequential stream per adapter matrix: with many adapters their weights are the cost,
// and short scattered reads of them ran at a fraction of the bandwidth), else cut into multiples of 32.
int expand_chunk(int out, int groups, int nOuts, int threads) {
  const int perModule = std::max(1, (4 * threads + groups * nOuts - 1) / (groups * nOuts));
  return std::max(32, ((out + perModule - 1) / perModule + 31) / 32 * 32);
}
constexpr int kMaxOuts = 3;

int pad16(int n) { return (n + kPanel - 1) / kPanel * kPanel; }

}  // namespace

LoraApply::LoraApply(const ModelConfig& c, int maxTokens, int maxRank) : c_(c), rankPad_(pad16(maxRank)) {
  const int q = c.nHeads * c.headDim(), kv = c.kvDim();
  maxIn_ = size_t(std::max({c.dim, q, c.hiddenDim}));
  ldt_ = size_t(std::max({pad16(q) + 2 * pad16(kv), 2 * pad16(c.hiddenDim), pad16(c.dim)}));
  gx_ = AlignedBuffer(4 * size_t(maxTokens) * maxIn_, "LoRA activations");
  ys_ = AlignedBuffer(4 * size_t(maxTokens) * kMaxOuts * size_t(rankPad_), "LoRA activations");
  tmp_ = AlignedBuffer(4 * size_t(maxTokens) * ldt_, "LoRA activations");
}

void LoraApply::begin(const StepBatch& b, const LoraPool* pool) {
  pool_ = pool;
  if (!pool || !b.loraSlots) {
    groups_.slot.clear();
    return;
  }
  groups_.build(b, pool->maxLoras());
}

void LoraApply::apply(ThreadPool& tp, const CpuKernels& kern, int layer, const float* x, int in, const LoraOut* outs, int nOuts) {
  if (!active()) return;
  const int G = groups_.count(), ldy = kMaxOuts * rankPad_;
  const int32_t* rows = groups_.rows.data();
  float *gx = gx_.as<float>(), *ys = ys_.as<float>(), *tmp = tmp_.as<float>();
  int outDim[kMaxOuts], colOff[kMaxOuts], chunk[kMaxOuts], chunkOff[kMaxOuts + 1] = {0};
  for (int j = 0, col = 0; j < nOuts; j++) {
    int inDim;
    lora_module_dims(c_, outs[j].module, &outDim[j], &inDim);
    colOff[j] = col;
    col += pad16(outDim[j]);
    chunk[j] = expand_chunk(outDim[j], G, nOuts, tp.size());
    chunkOff[j + 1] = chunkOff[j] + (outDim[j] + chunk[j] - 1) / chunk[j];
  }
  const auto mats = [&](int g, int j) -> const LoraMatrices& { return pool_->slot(groups_.slot[g]).layers[layer][outs[j].module]; };

  // Shrink: gather the group's rows, then x . A^T for each module (rank columns at ys[row, j * rankPad]).
  tp.parallel_for(G, [&](int g) {
    const int r0 = groups_.start[g], n = groups_.start[g + 1] - r0;
    for (int i = 0; i < n; i++) std::memcpy(gx + size_t(r0 + i) * in, x + size_t(rows[r0 + i]) * in, size_t(in) * 4);
    const MatmulIn mi{n, in, gx + size_t(r0) * in, in, nullptr, 0};
    for (int j = 0; j < nOuts; j++) {
      const LoraMatrices& m = mats(g, j);
      if (m.rank) kern.matmul(m.a, mi, ys + size_t(r0) * ldy + size_t(j) * rankPad_, ldy, 0, m.rank);
    }
  });
  // Expand: (. B^T) for a chunk of output columns, then added to the rows the group came from.
  tp.parallel_for(G * chunkOff[nOuts], [&](int task) {
    const int g = task / chunkOff[nOuts], c = task % chunkOff[nOuts];
    int j = 0;
    while (c >= chunkOff[j + 1]) j++;
    const LoraMatrices& m = mats(g, j);
    if (!m.rank) return;
    const int r0 = groups_.start[g], n = groups_.start[g + 1] - r0, N = outDim[j];
    const int n0 = (c - chunkOff[j]) * chunk[j], n1 = std::min(N, n0 + chunk[j]);
    const MatmulIn mi{n, m.rank, ys + size_t(r0) * ldy + size_t(j) * rankPad_, ldy, nullptr, 0};
    float* t = tmp + size_t(r0) * ldt_ + colOff[j];
    kern.matmul(m.b, mi, t, int(ldt_), n0, n1);
    const float scale = pool_->slot(groups_.slot[g]).scale;
    for (int i = 0; i < n; i++) {
      float* y = outs[j].y + size_t(rows[r0 + i]) * N;
      const float* d = t + size_t(i) * ldt_;
      for (int k = n0; k < n1; k++) y[k] += scale * d[k];
    }
  });
}

}  // namespace flotilla
