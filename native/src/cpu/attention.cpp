#include "attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace flotilla {

namespace {
constexpr int kQueryChunk = 16;  // long prefills split so both cores get work even for one sequence
constexpr int64_t kInlineMacs = 1 << 16;  // below this (decode at short contexts) waking the pool costs more
}

PagedAttention::PagedAttention(const ModelConfig& c, int maxBatchTokens, int maxBatchSeqs) : c_(c) {
  chunks_.reserve(size_t(maxBatchSeqs) + maxBatchTokens / kQueryChunk + 1);
  items_.reserve(chunks_.capacity() * c.nHeads);
}

void PagedAttention::run(ThreadPool& pool, const CpuKernels& kern, const KvCache& kv, int layer, const StepBatch& b,
                         const float* q, float* out) {
  chunks_.clear();
  items_.clear();
  const int nHeads = c_.nHeads;
  for (int s = 0; s < b.numSeqs; s++) {
    const int q0 = b.queryStartLoc[s], q1 = b.queryStartLoc[s + 1];
    if (q1 - q0 == 1 && kern.attend_heads) {  // a decode row: all heads in one item, block by block
      chunks_.push_back({s, q0, q1});
      items_.push_back({int(chunks_.size()) - 1, -1});
      continue;
    }
    for (int t = q0; t < q1; t += kQueryChunk) {  // prefill: its rows re-read one head's K/V from L2
      chunks_.push_back({s, t, std::min(t + kQueryChunk, q1)});
      for (int h = 0; h < nHeads; h++) items_.push_back({int(chunks_.size()) - 1, h});
    }
  }
  int64_t macs = 0;  // q.k and p*v over every (query, cached position) pair
  for (int t = 0; t < b.numTokens; t++) macs += int64_t(b.positions[t] + 1) * 2 * nHeads * c_.headDim();
  const auto item = [&](int i) {
    const Item& it = items_[i];
    const Chunk& ch = chunks_[it.chunk];
    if (it.head < 0 && attend_heads(kern, kv, layer, b, ch.seq, ch.t0, q, out)) return;
    for (int t = ch.t0; t < ch.t1; t++) {
      if (it.head >= 0) {
        attend_row(kern, kv, layer, b, ch.seq, t, it.head, q, out);
      } else {
        for (int h = 0; h < nHeads; h++) attend_row(kern, kv, layer, b, ch.seq, t, h, q, out);
      }
    }
  };
  const int items = static_cast<int>(items_.size());
  if (macs < kInlineMacs) {
    for (int i = 0; i < items; i++) item(i);
  } else {
    pool.parallel_for(items, item);
  }
}

bool PagedAttention::attend_heads(const CpuKernels& kern, const KvCache& kv, int layer, const StepBatch& b, int seq, int t,
                                  const float* q, float* out) const {
  const int hd = c_.headDim(), bs = kv.blockSize();
  const size_t qDim = size_t(c_.nHeads) * hd, headBytes = kv.row_bytes();
  const int32_t* table = b.blockTables + size_t(seq) * b.maxBlocksPerSeq;
  const KvRows k{kv.keys(layer, 0, 0), table, kv.block_bytes(), bs, int(headBytes), kv.type(), kv.scales_offset()};
  const KvRows v{kv.values(layer, 0, 0), table, kv.block_bytes(), bs, int(headBytes), kv.type(), kv.scales_offset()};
  return kern.attend_heads(q + t * qDim, k, v, c_.nHeads, c_.nHeads / c_.nKvHeads, kv.head_block_bytes(), b.positions[t] + 1, hd,
                           1.0f / std::sqrt(static_cast<float>(hd)), out + t * qDim);
}

// Online softmax over blocks: one pass over K and V, no scores buffer the size of the context. The
// kernel set's own attend() runs instead where it takes this head dim.
void PagedAttention::attend_row(const CpuKernels& kern, const KvCache& kv, int layer, const StepBatch& b, int seq,
                                int t, int head, const float* q, float* out) const {
  const int hd = c_.headDim(), bs = kv.blockSize(), kvHead = head / (c_.nHeads / c_.nKvHeads);
  const size_t qDim = size_t(c_.nHeads) * hd, headBytes = kv.row_bytes();
  const KvType type = kv.type();
  const bool scaled = type == KvType::I8;  // rows times their own scale (kv-type.h)
  const float* qh = q + t * qDim + head * hd;
  float* o = out + t * qDim + head * hd;
  const int n = b.positions[t] + 1;
  const int32_t* table = b.blockTables + size_t(seq) * b.maxBlocksPerSeq;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  if (kern.attend) {
    const KvRows k{kv.keys(layer, 0, kvHead), table, kv.block_bytes(), bs, int(headBytes), type, kv.scales_offset()};
    const KvRows v{kv.values(layer, 0, kvHead), table, kv.block_bytes(), bs, int(headBytes), type, kv.scales_offset()};
    if (kern.attend(qh, k, v, n, hd, scale, o)) return;
  }
  std::fill(o, o + hd, 0.f);
  float m = -std::numeric_limits<float>::infinity(), l = 0;
  float scores[1024];
  const int chunk = std::min(bs, 1024);
  for (int p0 = 0; p0 < n; p0 += chunk) {
    const int block = table[p0 / bs], off = p0 % bs, cnt = std::min(chunk, n - p0);
    const uint8_t* keys = kv.keys(layer, block, kvHead) + off * headBytes;
    const uint8_t* vals = kv.values(layer, block, kvHead) + off * headBytes;
    const float* kScale = scaled ? kv.scales(layer, 0, block, kvHead) + off : nullptr;
    const float* vScale = scaled ? kv.scales(layer, 1, block, kvHead) + off : nullptr;
    float bm = m;
    for (int j = 0; j < cnt; j++) {
      scores[j] = kern.dot_kv(qh, keys + j * headBytes, hd, type) * (scaled ? kScale[j] * scale : scale);
      bm = std::max(bm, scores[j]);
    }
    if (bm > m) {
      const float corr = std::exp(m - bm);  // 0 on the first block
      l *= corr;
      for (int i = 0; i < hd; i++) o[i] *= corr;
      m = bm;
    }
    for (int j = 0; j < cnt; j++) {
      const float p = std::exp(scores[j] - m);
      l += p;
      kern.axpy_kv(scaled ? p * vScale[j] : p, vals + j * headBytes, o, hd, type);
    }
  }
  const float inv = 1.0f / l;
  for (int i = 0; i < hd; i++) o[i] *= inv;
}

}  // namespace flotilla
