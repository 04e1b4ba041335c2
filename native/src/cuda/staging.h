// One step's metadata, packed on the host into pinned memory and copied to the device in a single
// transfer. Every array lies at an offset fixed by the capacities, so device pointers stay the same
// from step to step (CUDA graphs replay them); growing a capacity moves them and bumps generation.
#pragma once
#include <cstdint>
#include <cstring>

#include "device-weights.h"

namespace flotilla {
namespace cuda {

struct StagingCaps {
  int tokens = 0, seqs = 0, tableStride = 0;
  int64_t penaltyTokens = 0, biasTokens = 0, maskWords = 0;
};

// Array views into the host (h) or device (d) copy; same layout.
struct StagingView {
  int32_t *tok, *pos, *slot, *rowSeq, *decodeRows, *tiles, *sRows, *sSeq, *sPos, *tables;
  float *temperature, *topP, *minP, *rep, *pres, *freq, *biasVal;
  int32_t *topK, *numLogprobs, *penOff, *promptLens, *penTok, *biasOff, *biasTok, *maskOff;
  uint32_t *seeds, *mask;
};

class Staging {
 public:
  ~Staging() { free(); }
  // (Re)allocates for `caps` when they exceed the current ones; true when the pointers moved.
  bool reserve(const StagingCaps& caps, DeviceArena& arena);
  const StagingCaps& caps() const { return caps_; }
  const StagingView& host() const { return h_; }
  const StagingView& dev() const { return d_; }
  // Copies the first `bytes` of the host buffer (always the whole used layout) to the device.
  void upload(cudaStream_t s) { FL_CUDA(cudaMemcpyAsync(dbase_, hbase_, bytes_, cudaMemcpyHostToDevice, s)); }
  int generation() const { return generation_; }

 private:
  void layout(char* base, StagingView* v) const;
  void free();
  StagingCaps caps_;
  char *hbase_ = nullptr, *dbase_ = nullptr;
  DeviceArena* arena_ = nullptr;
  size_t bytes_ = 0;
  StagingView h_{}, d_{};
  int generation_ = 0;
};

inline void Staging::layout(char* base, StagingView* v) const {
  size_t off = 0;
  auto take = [&](auto*& p, int64_t n) {
    p = reinterpret_cast<std::remove_reference_t<decltype(p)>>(base + off);
    off += size_t((n * 4 + 15) / 16 * 16);
  };
  const int T = caps_.tokens, S = caps_.seqs;
  take(v->tok, T), take(v->pos, T), take(v->slot, T), take(v->rowSeq, T), take(v->decodeRows, T), take(v->tiles, 2 * T);
  take(v->sRows, T), take(v->sSeq, T), take(v->sPos, T), take(v->tables, int64_t(S) * caps_.tableStride);
  take(v->temperature, S), take(v->topP, S), take(v->minP, S), take(v->rep, S), take(v->pres, S), take(v->freq, S);
  take(v->topK, S), take(v->numLogprobs, S), take(v->penOff, S + 1), take(v->promptLens, S), take(v->seeds, S);
  take(v->penTok, caps_.penaltyTokens);
  take(v->biasOff, S + 1), take(v->biasTok, caps_.biasTokens), take(v->biasVal, caps_.biasTokens);
  take(v->maskOff, S), take(v->mask, caps_.maskWords);
  const_cast<Staging*>(this)->bytes_ = off;
}

inline void Staging::free() {
  if (hbase_) cudaFreeHost(hbase_);
  if (dbase_ && arena_) arena_->free(dbase_);
  hbase_ = dbase_ = nullptr;
}

inline bool Staging::reserve(const StagingCaps& want, DeviceArena& arena) {
  if (hbase_ && want.tokens <= caps_.tokens && want.seqs <= caps_.seqs && want.tableStride <= caps_.tableStride &&
      want.penaltyTokens <= caps_.penaltyTokens && want.biasTokens <= caps_.biasTokens && want.maskWords <= caps_.maskWords)
    return false;
  free();
  caps_.tokens = std::max(caps_.tokens, want.tokens), caps_.seqs = std::max(caps_.seqs, want.seqs);
  caps_.tableStride = std::max(caps_.tableStride, want.tableStride);
  caps_.penaltyTokens = std::max(caps_.penaltyTokens * 2, want.penaltyTokens);
  caps_.biasTokens = std::max(caps_.biasTokens * 2, want.biasTokens);
  caps_.maskWords = std::max(caps_.maskWords * 2, want.maskWords);
  layout(nullptr, &h_);
  arena_ = &arena;
  dbase_ = static_cast<char*>(arena.alloc(bytes_, "step metadata"));
  FL_CUDA(cudaMallocHost(&hbase_, bytes_));
  layout(hbase_, &h_);
  layout(dbase_, &d_);
  generation_++;
  return true;
}

}  // namespace cuda
}  // namespace flotilla
