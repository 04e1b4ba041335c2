#include "step-batch.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "error.h"

namespace flotilla {

namespace {

[[noreturn]] void bad(const std::string& what) { fail("E_BATCH", "step batch: " + what); }

void check_lengths(const StepBatch& b) {
  const int64_t S = b.numSeqs, T = b.numTokens;
  if (b.lenTokenIds < T || b.lenPositions < T || b.lenSlotMapping < T) bad("tokenIds/positions/slotMapping shorter than numTokens");
  if (b.lenQueryStartLoc < S + 1) bad("queryStartLoc needs numSeqs + 1 entries");
  if (b.lenContextLens < S || b.lenSampleMask < S || b.lenPerSeq < S) bad("a per-sequence array is shorter than numSeqs");
  if (b.maxBlocksPerSeq < 1) bad("maxBlocksPerSeq must be at least 1");
  if (b.lenBlockTables < S * int64_t(b.maxBlocksPerSeq)) bad("blockTables shorter than numSeqs * maxBlocksPerSeq");
  if (b.lenPenaltyOffsets < S + 1) bad("penaltyOffsets needs numSeqs + 1 entries");
  if (b.biasOffsets && b.lenBiasOffsets < S + 1) bad("biasOffsets needs numSeqs + 1 entries");
  if (b.tokenMaskOffsets && b.lenTokenMaskOffsets < S) bad("tokenMaskOffsets needs numSeqs entries");
}

// A mask inside tokenMask that allows at least one token of the vocabulary (an all-zero mask would
// leave nothing to sample).
void check_mask(const StepBatch& b, const BatchLimits& lim, int s, const std::string& seq) {
  if (!b.tokenMaskOffsets || b.tokenMaskOffsets[s] < 0) return;
  const int64_t W = mask_words(lim.vocabSize), off = b.tokenMaskOffsets[s];
  if (off + W > b.lenTokenMask) bad(seq + "tokenMaskOffsets entry " + std::to_string(off) + " leaves no room for its mask in tokenMask");
  const uint32_t* m = b.tokenMask + off;
  const int tail = lim.vocabSize % 32;
  for (int64_t w = 0; w < W; w++) {
    const uint32_t bits = w == W - 1 && tail ? m[w] & ((1u << tail) - 1) : m[w];
    if (bits) return;
  }
  bad(seq + "token mask allows no token");
}

void check_sequence(const StepBatch& b, const BatchLimits& lim, int s) {
  const std::string seq = "sequence " + std::to_string(s) + ": ";
  const int q0 = b.queryStartLoc[s], q1 = b.queryStartLoc[s + 1];
  if (q1 <= q0 || q1 > b.numTokens) bad(seq + "queryStartLoc must increase strictly up to numTokens");
  const int ctx = b.contextLens[s];
  if (ctx < q1 - q0 || ctx > int64_t(b.maxBlocksPerSeq) * lim.blockSize) bad(seq + "contextLen " + std::to_string(ctx) + " out of range");
  for (int t = q0; t < q1; t++) {
    if (b.positions[t] < 0 || b.positions[t] >= ctx) bad(seq + "position " + std::to_string(b.positions[t]) + " outside its context");
  }
  const int32_t* table = b.blockTables + int64_t(s) * b.maxBlocksPerSeq;
  for (int i = 0; i < (ctx + lim.blockSize - 1) / lim.blockSize; i++) {
    if (table[i] < 0 || table[i] >= lim.numBlocks) bad(seq + "block id " + std::to_string(table[i]) + " out of range");
  }
  const float temp = b.temperature[s], topP = b.topP[s], minP = b.minP[s], rep = b.repetitionPenalty[s];
  if (!(temp >= 0) || !std::isfinite(temp)) bad(seq + "temperature must be >= 0");
  if (!(topP > 0 && topP <= 1)) bad(seq + "topP must be in (0, 1]");
  if (!(minP >= 0 && minP <= 1)) bad(seq + "minP must be in [0, 1]");
  if (!(rep > 0) || !std::isfinite(rep)) bad(seq + "repetitionPenalty must be > 0");
  if (!std::isfinite(b.presencePenalty[s]) || !std::isfinite(b.frequencyPenalty[s])) bad(seq + "penalties must be finite");
  if (b.numLogprobs[s] < 0 || b.numLogprobs[s] > lim.maxLogprobs) bad(seq + "numLogprobs must be in 0.." + std::to_string(lim.maxLogprobs));
  const int p0 = b.penaltyOffsets[s], p1 = b.penaltyOffsets[s + 1];
  if (p0 < 0 || p1 < p0 || p1 > b.lenPenaltyTokens) bad(seq + "penaltyOffsets out of range");
  if (b.penaltyPromptLens[s] < 0 || b.penaltyPromptLens[s] > p1 - p0) bad(seq + "penaltyPromptLens exceeds its penalty tokens");
  for (int i = p0; i < p1; i++) {
    if (b.penaltyTokens[i] < 0 || b.penaltyTokens[i] >= lim.vocabSize) bad(seq + "penalty token id out of range");
  }
  check_mask(b, lim, s, seq);
  if (!b.biasOffsets) return;
  const int b0 = b.biasOffsets[s], b1 = b.biasOffsets[s + 1];
  if (b0 < 0 || b1 < b0 || b1 > b.lenBiasTokens || b1 > b.lenBiasValues) bad(seq + "biasOffsets out of range");
  if (b1 == b0) return;
  for (int i = b0; i < b1; i++) {
    if (b.biasTokens[i] < 0 || b.biasTokens[i] >= lim.vocabSize) bad(seq + "bias token id out of range");
    if (std::isnan(b.biasValues[i]) || b.biasValues[i] == std::numeric_limits<float>::infinity()) bad(seq + "bias values must be numbers below +inf");
  }
  // Each id once per sequence (the CUDA sampler adds a sequence's biases from parallel threads): marks
  // in a per-thread table, cleared again before returning or throwing.
  thread_local std::vector<uint8_t> seen;
  if (seen.size() < size_t(lim.vocabSize)) seen.resize(size_t(lim.vocabSize), 0);
  int dup = -1;
  int i = b0;
  for (; i < b1 && dup < 0; i++) {
    if (seen[size_t(b.biasTokens[i])]) dup = b.biasTokens[i];
    seen[size_t(b.biasTokens[i])] = 1;
  }
  for (int j = b0; j < i; j++) seen[size_t(b.biasTokens[j])] = 0;
  if (dup >= 0) bad(seq + "bias token id " + std::to_string(dup) + " appears twice");
}

}  // namespace

void check_batch(const StepBatch& b, const BatchLimits& lim) {
  if (b.numSeqs < 1 || b.numSeqs > lim.maxBatchSeqs)
    bad("numSeqs " + std::to_string(b.numSeqs) + " not in 1.." + std::to_string(lim.maxBatchSeqs) + " (maxBatchSeqs)");
  if (b.numTokens < 1 || b.numTokens > lim.maxBatchTokens)
    bad("numTokens " + std::to_string(b.numTokens) + " not in 1.." + std::to_string(lim.maxBatchTokens) + " (maxBatchTokens)");
  check_lengths(b);
  if (b.queryStartLoc[0] != 0 || b.queryStartLoc[b.numSeqs] != b.numTokens) bad("queryStartLoc must run from 0 to numTokens");
  const int64_t slots = int64_t(lim.numBlocks) * lim.blockSize;
  for (int t = 0; t < b.numTokens; t++) {
    if (b.tokenIds[t] < 0 || b.tokenIds[t] >= lim.vocabSize) bad("token id " + std::to_string(b.tokenIds[t]) + " at row " + std::to_string(t) + " out of range");
    if (b.slotMapping[t] < 0 || b.slotMapping[t] >= slots) bad("slot " + std::to_string(b.slotMapping[t]) + " at row " + std::to_string(t) + " out of range");
  }
  for (int s = 0; s < b.numSeqs; s++) {
    if (b.queryStartLoc[s + 1] < b.queryStartLoc[s]) bad("queryStartLoc must increase");
  }
  for (int s = 0; s < b.numSeqs; s++) check_sequence(b, lim, s);
}

}  // namespace flotilla
