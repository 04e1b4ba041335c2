// One engine step as flat arrays (NativeStepBatch), borrowed from the caller for the call's duration.
// S sequences, T tokens; sequence s owns rows queryStartLoc[s] .. queryStartLoc[s+1]-1.
#pragma once
#include <cstdint>

namespace flotilla {

struct StepBatch {
  int numSeqs = 0, numTokens = 0, maxBlocksPerSeq = 0;
  const int32_t* tokenIds = nullptr;       // (T)
  const int32_t* positions = nullptr;      // (T)
  const int32_t* slotMapping = nullptr;    // (T) block * blockSize + offset
  const int32_t* queryStartLoc = nullptr;  // (S+1)
  const int32_t* contextLens = nullptr;    // (S)
  const int32_t* blockTables = nullptr;    // (S, maxBlocksPerSeq)
  const uint8_t* sampleMask = nullptr;     // (S)
  const float* temperature = nullptr;      // (S) each below
  const int32_t* topK = nullptr;
  const float* topP = nullptr;
  const float* minP = nullptr;
  const float* repetitionPenalty = nullptr;
  const float* presencePenalty = nullptr;
  const float* frequencyPenalty = nullptr;
  const uint32_t* seeds = nullptr;
  const int32_t* penaltyTokens = nullptr;     // (penaltyOffsets[S])
  const int32_t* penaltyOffsets = nullptr;    // (S+1)
  const int32_t* penaltyPromptLens = nullptr; // (S)
  const int32_t* numLogprobs = nullptr;       // (S)
  // Logit bias (OpenAI's logit_bias; -inf bans a token, as min_tokens does with the stop tokens):
  // sequence s adds biasValues[i] to the logit of biasTokens[i] for i in biasOffsets[s] ..
  // biasOffsets[s+1], each id at most once per sequence, before penalties, temperature and sampling.
  // Optional: biasOffsets null means no bias in this step.
  const int32_t* biasTokens = nullptr;        // (biasOffsets[S])
  const float* biasValues = nullptr;          // (biasOffsets[S])
  const int32_t* biasOffsets = nullptr;       // (S+1)
  // Guided decoding (allowed-token masks): sequence s samples only tokens whose bit is set in its
  // mask, the ceil(vocab / 32) words of tokenMask from word tokenMaskOffsets[s] (bit t % 32 of word
  // t / 32 for token t); -1 = unmasked. Applied after bias and penalties (masked logits become -inf).
  // A mask must allow at least one token. Optional: tokenMaskOffsets null means no mask in this step.
  const uint32_t* tokenMask = nullptr;        // (masked sequences * ceil(vocab / 32))
  const int32_t* tokenMaskOffsets = nullptr;  // (S)
  // LoRA: sequence s runs with the adapter in slot loraSlots[s] of the engine's LoraPool, -1 = none.
  // Optional: null means no adapter in this step.
  const int32_t* loraSlots = nullptr;  // (S)

  // Element counts of the arrays as given, for bounds checks.
  int64_t lenTokenIds = 0, lenPositions = 0, lenSlotMapping = 0, lenQueryStartLoc = 0, lenContextLens = 0,
          lenBlockTables = 0, lenSampleMask = 0, lenPenaltyTokens = 0, lenPenaltyOffsets = 0, lenPerSeq = 0,
          lenBiasTokens = 0, lenBiasValues = 0, lenBiasOffsets = 0, lenTokenMask = 0, lenTokenMaskOffsets = 0,
          lenLoraSlots = 0;
};

struct BatchLimits {
  int maxBatchTokens, maxBatchSeqs, vocabSize, numBlocks, blockSize, maxLogprobs;
};

// Throws E_BATCH naming the first problem: lengths, offsets, ids, slots or block ids out of range.
void check_batch(const StepBatch& b, const BatchLimits& lim);

// Words of one sequence's token mask.
inline int mask_words(int vocabSize) { return (vocabSize + 31) / 32; }

// Sequence s's allowed-token mask, or null when it has none.
inline const uint32_t* token_mask_of(const StepBatch& b, int s) {
  if (!b.tokenMaskOffsets || b.tokenMaskOffsets[s] < 0) return nullptr;
  return b.tokenMask + b.tokenMaskOffsets[s];
}

}  // namespace flotilla
