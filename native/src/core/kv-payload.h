// The KV payload: one sequence's KV blocks moved from one engine's pool into another's (prefill on one
// replica, decode on another). Little-endian, a 64-byte header then the blocks:
//   0  magic "FLKV"           4  u32 version (1)          8  u64 model fingerprint
//  16  u32 dtype (KvDtypeCode) 20 u32 blockSize           24  u32 nLayers
//  28  u32 nKvHeads           32  u32 headDim             36  u32 numTokens (K/V held, last block partial)
//  40  u32 numBlocks          44  u32 reserved (0)        48  u64 blockBytes
//  56  8 bytes reserved (0)
//  64  numBlocks x blockBytes, each block in KvCache::export_block's layout (all layers' K then V).
// packages/engine/src/kv-transfer/kv-payload.ts reads the same header in TypeScript.
#pragma once
#include <cstddef>
#include <cstdint>

#include "weights.h"

namespace flotilla {

constexpr size_t kKvHeaderBytes = 64;
constexpr uint32_t kKvPayloadVersion = 1;

// Element type of a pool's K/V, as the header records it.
enum class KvDtypeCode : uint32_t { F32 = 0, F16 = 1 };

// What a payload must agree with to be imported: one engine's model and pool.
struct KvPoolInfo {
  uint64_t fingerprint = 0;
  KvDtypeCode dtype = KvDtypeCode::F32;
  uint32_t blockSize = 0, nLayers = 0, nKvHeads = 0, headDim = 0;
  uint64_t blockBytes = 0;
};

// 64 bits over the config and the weights as loaded (types, shapes, and bytes sampled from each
// matrix: its first, middle and last 256), so two engines agree exactly when they compute the same
// K/V. Taken before a backend rewrites the weights into its own layout (which differs by CPU).
uint64_t model_fingerprint(const ModelWeights& w);

inline size_t kv_payload_bytes(const KvPoolInfo& p, int numBlocks) { return kKvHeaderBytes + p.blockBytes * size_t(numBlocks); }

// Writes the header for `numBlocks` blocks holding `numTokens` tokens (E_KV_BLOCKS when they disagree).
void write_kv_header(const KvPoolInfo& p, int numTokens, int numBlocks, uint8_t* dst);

struct KvPayloadSize {
  int numTokens = 0, numBlocks = 0;
};

// Checks a payload of `len` bytes against `p` and returns its size; E_KV_FORMAT (not a payload,
// truncated, another version), E_KV_MODEL (fingerprint or shape), E_KV_DTYPE, E_KV_BLOCK_SIZE.
KvPayloadSize check_kv_payload(const KvPoolInfo& p, const uint8_t* src, size_t len);

}  // namespace flotilla
