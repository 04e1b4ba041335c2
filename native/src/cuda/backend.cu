// The CUDA backend: the Llama forward pass of core/ on one device and one stream, sampling on the
// device, pure-decode steps replayed from CUDA graphs keyed by padded batch size, and the KV pool
// sized after a warm-up step (vLLM's profile run). Shapes as in cpu/cpu-backend.cpp.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

#include "../core/kv-cache.h"
#include "cuda-api.h"
#include "kernels.cuh"
#include "staging.h"

namespace flotilla {
namespace cuda {
namespace {

struct Stream {
  cudaStream_t s = nullptr;
  ~Stream() { if (s) cudaStreamDestroy(s); }
};

// Activations for `T` token rows and `S` sampled rows, allocated once.
struct Scratch {
  float *x, *xb, *xb2, *q, *k, *v, *att, *h1, *h3, *fin, *logits, *work, *probs, *partial, *invFreq;
  int32_t *counts, *tokens, *topIds, *fallback;
  float *logprobs, *topLogprobs;
  void* xh;
};

class CudaBackend : public Backend {
 public:
  CudaBackend(const ModelWeights& w, const BackendOptions& o);
  ~CudaBackend() override {
    clear_graphs();
    if (hostOut_) cudaFreeHost(hostOut_);
  }
  const char* device() const override { return "cuda"; }
  const char* kernels() const override { return gemm_path(); }
  size_t kvBytes() const override { return kvBytes_; }
  int numBlocks() const override { return kv_.numBlocks; }
  bool samples_on_device() const override { return true; }
  // KV transfer: each (layer, K|V) run of a block is contiguous on the device, as in the CPU pool.
  bool export_kv_blocks(const int32_t* blocks, int n, uint8_t* payload) override { return copy_kv(blocks, n, payload, true); }
  bool import_kv_blocks(const int32_t* blocks, int n, const uint8_t* payload) override {
    return copy_kv(blocks, n, const_cast<uint8_t*>(payload), false);
  }
  void forward(const StepBatch& b, const int32_t* rows, int numRows, float* logits) override;
  void forward_sample(const StepBatch& b, const int32_t* rows, const int32_t* rowSeq, int R, const SampleOutput& out) override;
  void forward_hidden(const StepBatch& b, const int32_t* rows, int numRows, float* hidden) override;

 private:
  struct Counts { int T, numDecode, numTiles, R, topKWidth; };
  Counts stage(const StepBatch& b, const int32_t* rows, const int32_t* rowSeq, int R, int padTo);
  void layers(const Counts& c);
  void classify(int row0, int n);
  void sample_rows(const Counts& c);
  void run_graph(const Counts& c);
  void warm_up();
  bool copy_kv(const int32_t* blocks, int n, uint8_t* payload, bool toHost) {
    const size_t elt = kv_.f16 ? 2 : 4, run = size_t(kv_.nKv) * kv_.blockSize * kv_.hd * elt;
    const size_t half = size_t(kv_.numBlocks) * run;  // K (or V) of one layer
    auto* base = static_cast<uint8_t*>(kv_.base);
    uint8_t* at = payload;
    for (int i = 0; i < n; i++)
      for (int l = 0; l < c_.nLayers; l++)
        for (int kv = 0; kv < 2; kv++, at += run) {
          uint8_t* dev = base + (size_t(l) * 2 + kv) * half + size_t(blocks[i]) * run;
          if (toHost) FL_CUDA(cudaMemcpyAsync(at, dev, run, cudaMemcpyDeviceToHost, stream_.s));
          else FL_CUDA(cudaMemcpyAsync(dev, at, run, cudaMemcpyHostToDevice, stream_.s));
        }
    FL_CUDA(cudaStreamSynchronize(stream_.s));
    return true;
  }
  void clear_graphs() {  // staging moved: captured pointers are stale
    for (auto& g : graphs_) cudaGraphExecDestroy(g.second);
    graphs_.clear();
  }

  const ModelWeights& host_;
  const ModelConfig& c_;
  int dev_ = 0, Tc_, Sc_, maxSplits_;
  Stream stream_;
  DeviceArena arena_;
  DevModel m_;
  Scratch s_{};
  Staging st_;
  KvView kv_;
  size_t kvBytes_ = 0;
  std::map<int, cudaGraphExec_t> graphs_;  // key: padded batch * 64 + top-logprobs width
  bool useGraphs_ = true;
  void* hostOut_ = nullptr;  // pinned: tokens, logprobs, fallback, topIds, topLogprobs of Sc_ seqs
  Sampler hostSampler_;
  std::vector<float> rowLogits_;
};

int pad_batch(int n, int cap) {
  int p = 1;
  while (p < n) p <<= 1;
  return std::min(p, cap);
}

CudaBackend::CudaBackend(const ModelWeights& w, const BackendOptions& o)
    : host_(w), c_(w.config), Tc_(o.maxBatchTokens), Sc_(o.maxBatchSeqs), hostSampler_(w.config.vocabSize, 1),
      rowLogits_(w.config.vocabSize) {
  const int hd = c_.headDim(), qDim = c_.nHeads * hd, kvDim = c_.kvDim(), V = c_.vocabSize;
  if (hd > 256) fail("E_DEVICE", "the CUDA backend supports head dimensions up to 256 (this model has " + std::to_string(hd) + ")");
  if (const char* pick = std::getenv("FLOTILLA_CUDA_DEVICE")) dev_ = std::atoi(pick);
  if (const char* g = std::getenv("FLOTILLA_CUDA_GRAPHS")) useGraphs_ = g[0] != '0';
  FL_CUDA(cudaSetDevice(dev_));
  FL_CUDA(cudaStreamCreateWithFlags(&stream_.s, cudaStreamNonBlocking));
  m_ = upload_weights(w, arena_, stream_.s);
  auto f = [&](size_t n, const char* what) { return static_cast<float*>(arena_.alloc(n * 4, what)); };
  const size_t T = Tc_, S = Sc_, wide = std::max({size_t(c_.dim), size_t(qDim), size_t(c_.hiddenDim)});
  s_.x = f(T * c_.dim, "activations"), s_.xb = f(T * wide, "activations"), s_.xb2 = f(T * c_.dim, "activations");
  s_.q = f(T * qDim, "activations"), s_.k = f(T * kvDim, "activations"), s_.v = f(T * kvDim, "activations");
  s_.att = f(T * qDim, "activations"), s_.h1 = f(T * c_.hiddenDim, "activations"), s_.h3 = f(T * c_.hiddenDim, "activations");
  s_.fin = f(S * c_.dim, "activations"), s_.logits = f(S * V, "logits"), s_.work = f(S * V, "sampler"), s_.probs = f(S * V, "sampler");
  maxSplits_ = (c_.maxSeqLen + kSplitLen - 1) / kSplitLen;
  s_.partial = f(S * c_.nHeads * maxSplits_ * (hd + 2), "attention partials");
  s_.counts = static_cast<int32_t*>(arena_.alloc(S * V * 4, "sampler"));
  FL_CUDA(cudaMemset(s_.counts, 0, S * V * 4));
  s_.tokens = static_cast<int32_t*>(arena_.alloc(S * 4, "outputs")), s_.fallback = static_cast<int32_t*>(arena_.alloc(S * 4, "outputs"));
  s_.logprobs = f(S, "outputs"), s_.topIds = static_cast<int32_t*>(arena_.alloc(S * 20 * 4, "outputs")), s_.topLogprobs = f(S * 20, "outputs");
  s_.xh = arena_.alloc(T * wide * 2, "activations");
  std::vector<float> inv(hd / 2);
  for (int i = 0; i < hd / 2; i++) inv[i] = 1.0f / powf(c_.ropeTheta, float(2 * i) / float(hd));
  s_.invFreq = f(hd / 2, "rope");
  FL_CUDA(cudaMemcpy(s_.invFreq, inv.data(), inv.size() * 4, cudaMemcpyHostToDevice));
  FL_CUDA(cudaMallocHost(&hostOut_, S * (4 + 4 + 4 + 20 * 8)));
  kv_.blockSize = o.blockSize, kv_.nKv = c_.nKvHeads, kv_.hd = hd, kv_.f16 = o.kvF16;
  const int tableStride = (std::max(c_.maxSeqLen, Tc_) + o.blockSize - 1) / o.blockSize;
  st_.reserve({Tc_, Sc_, tableStride, int64_t(Tc_) * 4}, arena_);
  lt_available();  // loads cuBLASLt and its workspace before the measurement

  // warm-up: one prefill of min(maxBatchTokens, maxSeqLen) tokens on a temporary pool, sampled
  const uint64_t perBlock = KvCache::bytes_per_block(c_, o.blockSize, o.kvF16);
  kv_.numBlocks = (std::min(Tc_, c_.maxSeqLen) + o.blockSize - 1) / o.blockSize;
  kv_.base = arena_.alloc(perBlock * kv_.numBlocks, "warm-up KV");
  FL_CUDA(cudaMemset(kv_.base, 0, perBlock * kv_.numBlocks));
  warm_up();
  arena_.free(kv_.base);
  size_t freeB = 0, totalB = 0;
  FL_CUDA(cudaMemGetInfo(&freeB, &totalB));
  uint64_t blocks;
  if (o.numBlocks > 0) {
    blocks = o.numBlocks;
  } else if (o.kvCacheBytes > 0) {
    blocks = o.kvCacheBytes / perBlock;
  } else {
    const double budget = o.gpuMemoryUtilization * double(totalB) - double(totalB - freeB);
    blocks = budget > 0 ? uint64_t(budget / double(perBlock)) : 0;
    if (blocks < 1)
      fail("E_OOM", "gpuMemoryUtilization " + std::to_string(o.gpuMemoryUtilization) + " leaves no room for the KV cache: " +
                        std::to_string((totalB - freeB) >> 20) + " MiB of " + std::to_string(totalB >> 20) +
                        " MiB are in use after weights (" + std::to_string(m_.bytes >> 20) + " MiB) and activations");
  }
  if (blocks < 1) fail("E_OOM", "the KV cache holds no block (one needs " + std::to_string(perBlock) + " bytes)");
  kv_.numBlocks = int(std::min<uint64_t>(blocks, uint64_t(INT32_MAX) / o.blockSize));
  kvBytes_ = perBlock * kv_.numBlocks;
  kv_.base = arena_.alloc(kvBytes_, "the KV cache");
  FL_CUDA(cudaMemsetAsync(kv_.base, 0, kvBytes_, stream_.s));
  FL_CUDA(cudaStreamSynchronize(stream_.s));
}

void CudaBackend::warm_up() {
  const int T = std::min(Tc_, c_.maxSeqLen), bs = kv_.blockSize;
  std::vector<int32_t> ids(T), pos(T), slots(T), tables(kv_.numBlocks), qsl = {0, T}, ctx = {T}, offs = {0, T}, zero = {0}, topK = {40};
  std::vector<uint8_t> mask = {1};
  std::vector<float> temp = {0.8f}, topP = {0.9f}, minP = {0.f}, rep = {1.1f}, zf = {0.f};
  std::vector<uint32_t> seeds = {1};
  for (int t = 0; t < T; t++) ids[t] = (t * 7 + 1) % c_.vocabSize, pos[t] = t, slots[t] = t;
  for (int i = 0; i < kv_.numBlocks; i++) tables[i] = i;
  StepBatch b;
  b.numSeqs = 1, b.numTokens = T, b.maxBlocksPerSeq = kv_.numBlocks;
  b.tokenIds = ids.data(), b.positions = pos.data(), b.slotMapping = slots.data(), b.queryStartLoc = qsl.data();
  b.contextLens = ctx.data(), b.blockTables = tables.data(), b.sampleMask = mask.data(), b.temperature = temp.data();
  b.topK = topK.data(), b.topP = topP.data(), b.minP = minP.data(), b.repetitionPenalty = rep.data();
  b.presencePenalty = zf.data(), b.frequencyPenalty = zf.data(), b.seeds = seeds.data(), b.penaltyTokens = ids.data();
  b.penaltyOffsets = offs.data(), b.penaltyPromptLens = ctx.data(), b.numLogprobs = zero.data();
  (void)bs;
  const int32_t row = T - 1, seq = 0;
  int32_t tok = 0, topId = 0;
  float lp = 0, topLp = 0;
  forward_sample(b, &row, &seq, 1, SampleOutput{0, &tok, &lp, &topId, &topLp});
}

// Packs the batch into pinned memory: rows, decode/prefill split, fixed-stride block tables, sampling
// parameters; padTo > numSeqs adds idle decode rows (greedy, slot -1) up to a graph's batch size.
CudaBackend::Counts CudaBackend::stage(const StepBatch& b, const int32_t* rows, const int32_t* rowSeq, int R, int padTo) {
  const int S = b.numSeqs, T = b.numTokens, P = std::max(padTo, T);
  const int64_t nBias = b.biasOffsets ? b.biasOffsets[S] : 0;
  const int maskW = mask_words(c_.vocabSize);
  int64_t nMask = 0;  // masked sequences; their masks are packed one after another
  for (int s = 0; s < S; s++) nMask += token_mask_of(b, s) ? 1 : 0;
  if (st_.reserve({Tc_, Sc_, b.maxBlocksPerSeq, int64_t(b.penaltyOffsets[S]), nBias, nMask * maskW}, arena_)) clear_graphs();
  const StagingView& h = st_.host();
  const int stride = st_.caps().tableStride;
  Counts c{P, 0, 0, R, 0};
  int64_t packed = 0;
  for (int s = 0; s < S; s++) {
    const int q0 = b.queryStartLoc[s], q1 = b.queryStartLoc[s + 1];
    for (int t = q0; t < q1; t++) h.rowSeq[t] = s;
    if (q1 - q0 == 1) {
      if (b.positions[q0] + 1 > maxSplits_ * kSplitLen)
        fail("E_BATCH", "the CUDA backend attends at most " + std::to_string(maxSplits_ * kSplitLen) + " positions (config.maxSeqLen)");
      h.decodeRows[c.numDecode++] = q0;
    } else {
      for (int t = q0; t < q1; t += kPrefillTile) h.tiles[2 * c.numTiles] = t, h.tiles[2 * c.numTiles++ + 1] = std::min(kPrefillTile, q1 - t);
    }
    std::memcpy(h.tables + size_t(s) * stride, b.blockTables + size_t(s) * b.maxBlocksPerSeq, size_t(b.maxBlocksPerSeq) * 4);
    h.temperature[s] = b.temperature[s], h.topK[s] = b.topK[s], h.topP[s] = b.topP[s], h.minP[s] = b.minP[s];
    h.rep[s] = b.repetitionPenalty[s], h.pres[s] = b.presencePenalty[s], h.freq[s] = b.frequencyPenalty[s];
    h.seeds[s] = b.seeds[s], h.numLogprobs[s] = b.numLogprobs[s], h.promptLens[s] = b.penaltyPromptLens[s];
    h.penOff[s] = b.penaltyOffsets[s];
    h.biasOff[s] = b.biasOffsets ? b.biasOffsets[s] : 0;
    if (const uint32_t* m = token_mask_of(b, s)) {
      h.maskOff[s] = int32_t(packed++ * maskW);
      std::memcpy(h.mask + h.maskOff[s], m, size_t(maskW) * 4);
    } else {
      h.maskOff[s] = -1;
    }
    c.topKWidth = std::max(c.topKWidth, int(b.numLogprobs[s]));
  }
  h.penOff[S] = b.penaltyOffsets[S];
  h.biasOff[S] = int32_t(nBias);
  if (nBias > 0) {
    std::memcpy(h.biasTok, b.biasTokens, size_t(nBias) * 4);
    std::memcpy(h.biasVal, b.biasValues, size_t(nBias) * 4);
  }
  std::memcpy(h.tok, b.tokenIds, size_t(T) * 4);
  std::memcpy(h.pos, b.positions, size_t(T) * 4);
  std::memcpy(h.slot, b.slotMapping, size_t(T) * 4);
  std::memcpy(h.penTok, b.penaltyTokens, size_t(b.penaltyOffsets[S]) * 4);
  for (int i = 0; i < R; i++) h.sRows[i] = rows[i], h.sSeq[i] = rowSeq[i], h.sPos[i] = b.positions[rows[i]] + 1;
  for (int t = T; t < P; t++) {  // idle rows of a padded decode batch, each its own idle sequence
    h.tok[t] = 0, h.pos[t] = 0, h.slot[t] = -1, h.rowSeq[t] = t, h.decodeRows[c.numDecode++] = t;
    h.sRows[t] = t, h.sSeq[t] = t, h.sPos[t] = 1;
    std::memset(h.tables + size_t(t) * stride, 0, size_t(stride) * 4);
    h.temperature[t] = 0, h.topK[t] = 0, h.topP[t] = 1, h.minP[t] = 0, h.rep[t] = 1, h.pres[t] = 0, h.freq[t] = 0;
    h.seeds[t] = 0, h.numLogprobs[t] = 0, h.promptLens[t] = 0, h.penOff[t + 1] = h.penOff[t], h.biasOff[t + 1] = h.biasOff[t];
    h.maskOff[t] = -1;
  }
  if (P > T) c.R = P;
  st_.upload(stream_.s);
  return c;
}

void CudaBackend::layers(const Counts& n) {
  const StagingView& d = st_.dev();
  const cudaStream_t s = stream_.s;
  const int T = n.T, hd = c_.headDim(), H = c_.nHeads;
  const AttnPlan plan{d.pos, d.rowSeq, d.tables, st_.caps().tableStride, d.decodeRows, n.numDecode, d.tiles, n.numTiles, maxSplits_, s_.partial};
  embed(m_.tok, d.tok, T, s_.x, s);
  for (int l = 0; l < c_.nLayers; l++) {
    const DevLayer& L = m_.layers[l];
    rmsnorm(s_.x, l > 0 ? s_.xb2 : nullptr, L.attnNorm, s_.xb, T, c_.dim, c_.normEps, s);  // adds the last FFN output first
    gemm(L.wq, s_.xb, T, s_.q, s_.xh, s);
    gemm(L.wk, s_.xb, T, s_.k, s_.xh, s);
    gemm(L.wv, s_.xb, T, s_.v, s_.xh, s);
    rope(s_.q, s_.k, d.pos, s_.invFreq, T, H, c_.nKvHeads, hd, c_.ropeLayout == RopeLayout::Half, s);
    kv_write(kv_, l, s_.k, s_.v, d.slot, T, s);
    attention(kv_, l, plan, s_.q, s_.att, H, s);
    gemm(L.wo, s_.att, T, s_.xb2, s_.xh, s);
    rmsnorm(s_.x, s_.xb2, L.ffnNorm, s_.xb, T, c_.dim, c_.normEps, s);
    gemm(L.w1, s_.xb, T, s_.h1, s_.xh, s);
    gemm(L.w3, s_.xb, T, s_.h3, s_.xh, s);
    swiglu(s_.h1, s_.h3, T, c_.hiddenDim, s);
    gemm(L.w2, s_.h1, T, s_.xb2, s_.xh, s);
  }
  rmsnorm(s_.x, s_.xb2, m_.norm, s_.xb, T, c_.dim, c_.normEps, s);  // the last residual add (xb unused)
}

// logits (n, vocab) of sampled rows row0 .. row0+n-1 (n <= Sc_).
void CudaBackend::classify(int row0, int n) {
  rmsnorm_rows(s_.x, st_.dev().sRows + row0, m_.norm, s_.fin, n, c_.dim, c_.normEps, stream_.s);
  gemm(m_.classifier, s_.fin, n, s_.logits, s_.xh, stream_.s);
}

void CudaBackend::sample_rows(const Counts& n) {
  const StagingView& d = st_.dev();
  SampleArgs a{s_.logits, s_.work, s_.probs, s_.counts, n.R, c_.vocabSize, d.sSeq, d.sPos, d.temperature, d.topP, d.minP,
               d.rep, d.pres, d.freq, d.topK, d.numLogprobs, d.penTok, d.penOff, d.promptLens, d.biasTok, d.biasVal, d.biasOff, d.mask, d.maskOff, d.seeds, n.topKWidth,
               s_.tokens, s_.logprobs, s_.topIds, s_.topLogprobs, s_.fallback};
  sample(a, stream_.s);
}

void CudaBackend::run_graph(const Counts& n) {
  const int key = n.T * 64 + n.topKWidth;
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    cudaGraph_t g = nullptr;
    FL_CUDA(cudaStreamBeginCapture(stream_.s, cudaStreamCaptureModeThreadLocal));
    try {
      layers(n);
      classify(0, n.R);
      sample_rows(n);
    } catch (...) {
      cudaStreamEndCapture(stream_.s, &g);
      if (g) cudaGraphDestroy(g);
      throw;
    }
    FL_CUDA(cudaStreamEndCapture(stream_.s, &g));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t e = cudaGraphInstantiate(&exec, g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess) throw_cuda(e, "cudaGraphInstantiate");
    it = graphs_.emplace(key, exec).first;
  }
  FL_CUDA(cudaGraphLaunch(it->second, stream_.s));
}

void CudaBackend::forward_sample(const StepBatch& b, const int32_t* rows, const int32_t* rowSeq, int R, const SampleOutput& out) {
  FL_CUDA(cudaSetDevice(dev_));
  const bool decodeOnly = b.numTokens == b.numSeqs && R == b.numSeqs;
  const bool graph = useGraphs_ && decodeOnly && R > 0;
  const Counts n = stage(b, rows, rowSeq, R, graph ? pad_batch(b.numSeqs, Sc_) : 0);
  if (graph) {
    run_graph(n);
  } else {
    layers(n);
    for (int r0 = 0; r0 < R; r0 += Sc_) classify(r0, std::min(Sc_, R - r0));  // R <= numSeqs <= Sc_
    sample_rows(n);
  }
  const size_t S = Sc_;
  char* h = static_cast<char*>(hostOut_);
  int32_t* tokens = reinterpret_cast<int32_t*>(h);
  float* logprobs = reinterpret_cast<float*>(h + 4 * S);
  int32_t* fallback = reinterpret_cast<int32_t*>(h + 8 * S);
  int32_t* topIds = reinterpret_cast<int32_t*>(h + 12 * S);
  float* topLps = reinterpret_cast<float*>(h + 12 * S + 80 * S);
  const cudaStream_t s = stream_.s;
  FL_CUDA(cudaMemcpyAsync(tokens, s_.tokens, 4 * S, cudaMemcpyDeviceToHost, s));
  FL_CUDA(cudaMemcpyAsync(logprobs, s_.logprobs, 4 * S, cudaMemcpyDeviceToHost, s));
  FL_CUDA(cudaMemcpyAsync(fallback, s_.fallback, 4 * S, cudaMemcpyDeviceToHost, s));
  if (out.topK > 0) {
    FL_CUDA(cudaMemcpyAsync(topIds, s_.topIds, size_t(n.topKWidth) * S * 4, cudaMemcpyDeviceToHost, s));
    FL_CUDA(cudaMemcpyAsync(topLps, s_.topLogprobs, size_t(n.topKWidth) * S * 4, cudaMemcpyDeviceToHost, s));
  }
  FL_CUDA(cudaStreamSynchronize(s));
  for (int i = 0; i < R; i++) {
    const int seq = rowSeq[i];
    if (fallback[i]) {  // too many candidates for the device sort: the CPU sampler on this row's logits
      FL_CUDA(cudaMemcpy(rowLogits_.data(), s_.logits + size_t(i) * c_.vocabSize, size_t(c_.vocabSize) * 4, cudaMemcpyDeviceToHost));
      SampleResult r;
      r.topIds = out.topIds + size_t(seq) * out.topK, r.topLogprobs = out.topLogprobs + size_t(seq) * out.topK;
      hostSampler_.sample(rowLogits_.data(), sample_params(b, seq, rows[i]), 0, &r);
      out.tokens[seq] = r.token, out.logprobs[seq] = r.logprob;
      continue;
    }
    out.tokens[seq] = tokens[seq], out.logprobs[seq] = logprobs[seq];
    for (int k = 0; k < std::min(out.topK, int(b.numLogprobs[seq])); k++)
      out.topIds[size_t(seq) * out.topK + k] = topIds[size_t(seq) * n.topKWidth + k],
      out.topLogprobs[size_t(seq) * out.topK + k] = topLps[size_t(seq) * n.topKWidth + k];
  }
}

void CudaBackend::forward(const StepBatch& b, const int32_t* rows, int numRows, float* logits) {
  FL_CUDA(cudaSetDevice(dev_));
  // rows may exceed the sampled-row capacity: stage them in chunks of Sc_ after one pass of layers
  std::vector<int32_t> seqOf(std::min(numRows, Tc_), 0);
  const Counts n = stage(b, rows, seqOf.data(), std::min(numRows, Tc_), 0);
  layers(n);
  for (int r0 = 0; r0 < numRows; r0 += Sc_) {
    const int cnt = std::min(Sc_, numRows - r0);
    classify(r0, cnt);
    FL_CUDA(cudaMemcpyAsync(logits + size_t(r0) * c_.vocabSize, s_.logits, size_t(cnt) * c_.vocabSize * 4, cudaMemcpyDeviceToHost, stream_.s));
  }
  FL_CUDA(cudaStreamSynchronize(stream_.s));
}

// Embeddings: forward() without the classifier; the final-normed rows come back in chunks of Sc_ (s_.fin's
// rows; the stream orders each chunk's copy before the next chunk overwrites them).
void CudaBackend::forward_hidden(const StepBatch& b, const int32_t* rows, int numRows, float* hidden) {
  FL_CUDA(cudaSetDevice(dev_));
  std::vector<int32_t> seqOf(std::min(numRows, Tc_), 0);
  const Counts n = stage(b, rows, seqOf.data(), std::min(numRows, Tc_), 0);
  layers(n);
  for (int r0 = 0; r0 < numRows; r0 += Sc_) {
    const int cnt = std::min(Sc_, numRows - r0);
    rmsnorm_rows(s_.x, st_.dev().sRows + r0, m_.norm, s_.fin, cnt, c_.dim, c_.normEps, stream_.s);
    FL_CUDA(cudaMemcpyAsync(hidden + size_t(r0) * c_.dim, s_.fin, size_t(cnt) * c_.dim * 4, cudaMemcpyDeviceToHost, stream_.s));
  }
  FL_CUDA(cudaStreamSynchronize(stream_.s));
}

}  // namespace
}  // namespace cuda

std::unique_ptr<Backend> make_cuda_backend(const ModelWeights& w, const BackendOptions& o) {
  return std::make_unique<cuda::CudaBackend>(w, o);
}

}  // namespace flotilla
