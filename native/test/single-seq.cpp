#include "single-seq.h"

namespace flotilla::test {

SeqDriver::SeqDriver(Engine& engine, int numSeqs, int maxLen)
    : engine_(engine), numSeqs_(numSeqs), blocksPerSeq_((maxLen + engine.blockSize() - 1) / engine.blockSize()), len_(numSeqs, 0) {
  const int S = numSeqs;
  tables_.resize(size_t(S) * blocksPerSeq_);
  for (size_t i = 0; i < tables_.size(); i++) tables_[i] = static_cast<int32_t>(i);
  qsl_.resize(S + 1);
  ctx_.resize(S);
  i32Zero_.assign(S, 0);
  topK_.assign(S, 0);
  offsets_.assign(S + 1, 0);
  mask_.assign(S, 1);
  temp_.assign(S, 0.f);
  topP_.assign(S, 1.f);
  minP_.assign(S, 0.f);
  rep_.assign(S, 1.f);
  zeroF_.assign(S, 0.f);
  seeds_.assign(S, 0);
}

std::vector<int> SeqDriver::step(const std::vector<std::vector<int>>& tokens) {
  const int bs = engine_.blockSize();
  ids_.clear(), pos_.clear(), slots_.clear();
  for (int s = 0; s < numSeqs_; s++) {
    qsl_[s] = static_cast<int32_t>(ids_.size());
    for (int t : tokens[s]) {
      const int p = len_[s]++;
      ids_.push_back(t);
      pos_.push_back(p);
      slots_.push_back(tables_[size_t(s) * blocksPerSeq_ + p / bs] * bs + p % bs);
    }
    ctx_[s] = len_[s];
  }
  qsl_[numSeqs_] = static_cast<int32_t>(ids_.size());
  StepBatch b;
  b.numSeqs = numSeqs_, b.numTokens = static_cast<int>(ids_.size()), b.maxBlocksPerSeq = blocksPerSeq_;
  b.tokenIds = ids_.data(), b.positions = pos_.data(), b.slotMapping = slots_.data();
  b.queryStartLoc = qsl_.data(), b.contextLens = ctx_.data(), b.blockTables = tables_.data(), b.sampleMask = mask_.data();
  b.temperature = temp_.data(), b.topK = topK_.data(), b.topP = topP_.data(), b.minP = minP_.data();
  b.repetitionPenalty = rep_.data(), b.presencePenalty = zeroF_.data(), b.frequencyPenalty = zeroF_.data();
  b.seeds = seeds_.data(), b.penaltyTokens = nullptr, b.penaltyOffsets = offsets_.data();
  b.penaltyPromptLens = i32Zero_.data(), b.numLogprobs = i32Zero_.data();
  b.lenTokenIds = b.lenPositions = b.lenSlotMapping = b.numTokens;
  b.lenQueryStartLoc = b.lenPenaltyOffsets = numSeqs_ + 1;
  b.lenContextLens = b.lenSampleMask = b.lenPerSeq = numSeqs_;
  b.lenBlockTables = static_cast<int64_t>(tables_.size());
  const StepOutput& out = engine_.step(b);
  return std::vector<int>(out.tokens.begin(), out.tokens.begin() + numSeqs_);
}

}  // namespace flotilla::test
