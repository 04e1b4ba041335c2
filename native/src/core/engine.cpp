#include "engine.h"

#include <algorithm>
#include <limits>

#include "../cpu/kernels.h"
#include "error.h"
#include "kv-cache.h"
#include "lora.h"
#ifdef FLOTILLA_HAVE_CUDA
#include "../cuda/cuda-api.h"
#endif

namespace flotilla {

namespace {

int resolve_blocks(const LoadSpec& spec, KvType kvType) {
  if (spec.numBlocks > 0) return spec.numBlocks;
  const uint64_t perBlock = KvCache::bytes_per_block(spec.config, spec.blockSize, kvType);
  const uint64_t n = spec.kvCacheBytes / perBlock;
  if (n < 1) fail("E_OOM", "kvCacheBytes " + std::to_string(spec.kvCacheBytes) + " holds no KV block (one needs " + std::to_string(perBlock) + " bytes)");
  return static_cast<int>(std::min<uint64_t>(n, std::numeric_limits<int32_t>::max() / uint64_t(spec.blockSize)));
}

// The backend `spec.device` asks for: 'cuda' fails with E_DEVICE when CUDA is not compiled in or no
// usable device is present; 'auto' takes CUDA when both hold and the CPU otherwise.
bool use_cuda(const LoadSpec& spec) {
  if (spec.device == LoadSpec::Device::Cpu) return false;
#ifdef FLOTILLA_HAVE_CUDA
  const std::string why = cuda_unavailable_reason();
  if (why.empty()) return true;
  if (spec.device == LoadSpec::Device::Cuda) fail("E_DEVICE", "device 'cuda' is not usable: " + why);
  return false;
#else
  if (spec.device == LoadSpec::Device::Cuda)
    fail("E_DEVICE", "device 'cuda' was asked but this addon was built without CUDA (no nvcc at build time, or FLOTILLA_CUDA=0)");
  return false;
#endif
}

}  // namespace

SampleParams sample_params(const StepBatch& b, int s, int row) {
  SampleParams p;
  p.temperature = b.temperature[s];
  p.topK = b.topK[s];
  p.topP = b.topP[s];
  p.minP = b.minP[s];
  p.repetitionPenalty = b.repetitionPenalty[s];
  p.presencePenalty = b.presencePenalty[s];
  p.frequencyPenalty = b.frequencyPenalty[s];
  p.seed = b.seeds[s];
  p.position = b.positions[row] + 1;
  p.penaltyTokens = b.penaltyTokens + b.penaltyOffsets[s];
  p.numPenaltyTokens = b.penaltyOffsets[s + 1] - b.penaltyOffsets[s];
  p.numPromptTokens = b.penaltyPromptLens[s];
  p.numLogprobs = b.numLogprobs[s];
  if (b.biasOffsets) {
    p.biasTokens = b.biasTokens + b.biasOffsets[s];
    p.biasValues = b.biasValues + b.biasOffsets[s];
    p.numBias = b.biasOffsets[s + 1] - b.biasOffsets[s];
  }
  p.allowMask = token_mask_of(b, s);
  return p;
}

std::unique_ptr<Engine> Engine::load(const LoadSpec& spec, ProgressFn progress, void* ctx) {
  check_config(spec.config);
  check_limits(spec);
  std::unique_ptr<Engine> e(new Engine());
  e->pool_ = std::make_unique<ThreadPool>(spec.numThreads > 0 ? spec.numThreads : hardware_threads());
  const bool cuda = use_cuda(spec);
  // int8 is the CPU pool's 8-bit type and fp8 (e4m3) the CUDA backend's (vLLM's fp8 is CUDA-only too), refused
  // before the weights load
  if (spec.kvType == KvType::Fp8 && !cuda)
    fail("E_DTYPE", "kvDtype 'fp8' (kv_cache_dtype) needs the CUDA backend; the CPU backend takes 'int8' for an 8-bit KV cache");
  if (spec.f32Activations && cuda)
    fail("E_DEVICE", "activations 'f32' is a CPU backend option (its quantized matmuls); the CUDA backend runs f16 activations");
  if (spec.kvType == KvType::I8 && cuda)
    fail("E_DTYPE", "kvDtype 'int8' (kv_cache_dtype) is the CPU backend's 8-bit KV cache; the CUDA backend takes 'fp8'");
  e->weights_ = load_weights(spec, *e->pool_, progress, ctx);
  // kvDtype 'auto' (vLLM's: the model's dtype): a model held in f16 gets an f16 pool; bf16 keeps f32
  // (the pool has no bf16, and f16's range is narrower than bf16's), as do f32 and quantized ones.
  e->kvType_ = spec.kvAuto ? (!e->weights_->layers.empty() && e->weights_->layers[0].wq.type == DType::F16 ? KvType::F16 : KvType::F32)
                           : spec.kvType;
  e->blockSize_ = spec.blockSize;
  e->maxBatchTokens_ = spec.maxBatchTokens;
  e->maxBatchSeqs_ = spec.maxBatchSeqs;
  const uint64_t fingerprint = model_fingerprint(*e->weights_);  // before a backend rewrites the weights
  BackendOptions bo{0, spec.blockSize, e->kvType_, spec.maxBatchTokens, spec.maxBatchSeqs};
  bo.f32Activations = spec.f32Activations;
  if (spec.maxLoras > 0) {
    if (cuda) fail("E_DEVICE", "LoRA adapters (maxLoras) run on the CPU backend only; src/cuda/lora.cu is not wired into the CUDA backend yet");
    e->lora_ = std::make_unique<LoraPool>(spec.config, spec.maxLoras, spec.maxLoraRank, select_kernels().panels);
    bo.lora = e->lora_.get();
    bo.maxLoraRank = spec.maxLoraRank;
  }
  if (cuda) {
#ifdef FLOTILLA_HAVE_CUDA
    bo.numBlocks = spec.numBlocks;
    bo.kvCacheBytes = spec.kvCacheBytesGiven ? spec.kvCacheBytes : 0;
    bo.gpuMemoryUtilization = spec.gpuMemoryUtilization;
    e->backend_ = make_cuda_backend(*e->weights_, bo);
#endif
  } else {
    bo.numBlocks = resolve_blocks(spec, e->kvType_);
    e->backend_ = make_cpu_backend(*e->weights_, bo, *e->pool_);
  }
  e->numBlocks_ = e->backend_->numBlocks();
  const ModelConfig& c = spec.config;
  e->kvPool_ = {fingerprint, kv_dtype_code(e->kvType_), uint32_t(spec.blockSize), uint32_t(c.nLayers),
                uint32_t(c.nKvHeads), uint32_t(c.headDim()), KvCache::bytes_per_block(c, spec.blockSize, e->kvType_)};
  const int vocab = spec.config.vocabSize, S = spec.maxBatchSeqs;
  const CpuKernels& kern = select_kernels();  // the sampler runs on the CPU whatever the backend
  e->sampler_ = std::make_unique<Sampler>(vocab, e->pool_->size(), SamplerKernels{kern.argmax, kern.sum_exp});
  e->verifier_ = std::make_unique<Verifier>(vocab, e->pool_->size());
  e->rows_.resize(spec.maxBatchTokens);
  e->rowSeq_.resize(spec.maxBatchTokens);
  e->seqRow_.resize(S + 1);
  e->logits_.resize(size_t(S) * vocab);
  e->out_.tokens.resize(S);
  e->out_.logprobs.resize(S);
  e->out_.topIds.resize(size_t(S) * kMaxLogprobs);
  e->out_.topLogprobs.resize(size_t(S) * kMaxLogprobs);
  DraftBuffers& d = e->draft_;
  d.zerosI.assign(S + 1, 0);
  d.zerosF.assign(S, 0.f);
  d.onesF.assign(S, 1.f);
  for (auto* v : {&d.tokenIds, &d.positions, &d.slotMapping, &d.contextLens, &d.seqOf, &d.loraSlots}) v->resize(S);
  d.queryStartLoc.resize(S + 1);
  d.sampleMask.assign(S, 1);
  return e;
}

namespace {

// Block ids of a KV transfer: n of them, each in [0, numBlocks), distinct when written into.
void check_kv_blocks(const int32_t* blocks, int n, int numBlocks, bool distinct) {
  if (n < 1 || !blocks) fail("E_KV_BLOCKS", "a KV transfer needs at least one block");
  std::vector<uint8_t> seen(distinct ? numBlocks : 0);
  for (int i = 0; i < n; i++) {
    const int32_t b = blocks[i];
    if (b < 0 || b >= numBlocks) fail("E_KV_BLOCKS", "block id " + std::to_string(b) + " is outside the pool (0.." + std::to_string(numBlocks - 1) + ")");
    if (distinct && seen[b]++) fail("E_KV_BLOCKS", "block id " + std::to_string(b) + " appears twice");
  }
}

}  // namespace

void Engine::export_kv(const int32_t* blocks, int n, int numTokens, uint8_t* dst, size_t len) {
  check_kv_blocks(blocks, n, numBlocks_, false);
  if (len < kv_payload_bytes(kvPool_, n))
    fail("E_KV_BLOCKS", "the KV payload of " + std::to_string(n) + " blocks needs " + std::to_string(kv_payload_bytes(kvPool_, n)) + " bytes");
  write_kv_header(kvPool_, numTokens, n, dst);
  if (!backend_->export_kv_blocks(blocks, n, dst + kKvHeaderBytes))
    fail("E_DEVICE", std::string("KV export is not implemented on the ") + device() + " backend");
}

int Engine::import_kv(const uint8_t* src, size_t len, const int32_t* blocks, int n) {
  const KvPayloadSize size = check_kv_payload(kvPool_, src, len);
  if (n != size.numBlocks) fail("E_KV_BLOCKS", "the KV payload holds " + std::to_string(size.numBlocks) + " blocks; " + std::to_string(n) + " were given");
  check_kv_blocks(blocks, n, numBlocks_, true);
  if (!backend_->import_kv_blocks(blocks, n, src + kKvHeaderBytes))
    fail("E_DEVICE", std::string("KV import is not implemented on the ") + device() + " backend");
  return size.numTokens;
}

void Engine::check(const StepBatch& b) const {
  check_batch(b, limits());
  if (!b.loraSlots) return;
  if (!lora_) fail("E_BATCH", "step batch: loraSlots given but the model was loaded without LoRA slots (maxLoras 0)");
  lora_->check_batch(b);
}

void Engine::load_lora(int slot, const LoraSpec& spec) {
  if (!lora_) fail("E_SHAPE", "loadLora: the model was loaded without LoRA slots (maxLoras 0)");
  lora_->load(slot, spec, *pool_);
}

void Engine::unload_lora(int slot) {
  if (lora_) lora_->unload(slot);
}

int Engine::maxLoras() const { return lora_ ? lora_->maxLoras() : 0; }
int Engine::maxLoraRank() const { return lora_ ? lora_->maxRank() : 0; }
size_t Engine::loraBytes() const { return lora_ ? lora_->bytes() : 0; }

BatchLimits Engine::limits() const {
  return {maxBatchTokens_, maxBatchSeqs_, config().vocabSize, numBlocks_, blockSize_, kMaxLogprobs};
}

int Engine::step(const StepBatch& b, const StepOutputView& out) {
  check(b);
  const int S = b.numSeqs;
  int R = 0, topK = 0;
  for (int s = 0; s < S; s++) {
    if (!b.sampleMask[s]) continue;
    rows_[R] = b.queryStartLoc[s + 1] - 1;
    rowSeq_[R++] = s;
    topK = std::max(topK, int(b.numLogprobs[s]));
  }
  const int64_t tops = int64_t(S) * topK;
  if (out.lenTokens < S || out.lenLogprobs < S)
    fail("E_BATCH", "step output: tokens and logprobs need room for " + std::to_string(S) + " sequences");
  if (out.lenTopIds < tops || out.lenTopLogprobs < tops)
    fail("E_BATCH", "step output: topIds and topLogprobs need room for " + std::to_string(tops) + " entries");
  std::fill_n(out.tokens, S, -1);
  std::fill_n(out.logprobs, S, 0.f);
  std::fill_n(out.topIds, tops, -1);
  std::fill_n(out.topLogprobs, tops, -std::numeric_limits<float>::infinity());
  const SampleOutput so{topK, out.tokens, out.logprobs, out.topIds, out.topLogprobs};
  if (backend_->samples_on_device()) {
    backend_->forward_sample(b, rows_.data(), rowSeq_.data(), R, so);
    return topK;
  }
  backend_->forward(b, rows_.data(), R, logits_.data());
  sample_rows(b, R, so);
  return topK;
}

const StepOutput& Engine::step(const StepBatch& b) {
  StepOutputView v;
  v.tokens = out_.tokens.data(), v.logprobs = out_.logprobs.data();
  v.topIds = out_.topIds.data(), v.topLogprobs = out_.topLogprobs.data();
  v.lenTokens = int64_t(out_.tokens.size()), v.lenLogprobs = int64_t(out_.logprobs.size());
  v.lenTopIds = int64_t(out_.topIds.size()), v.lenTopLogprobs = int64_t(out_.topLogprobs.size());
  out_.topK = step(b, v);
  out_.numSeqs = b.numSeqs;
  return out_;
}

void Engine::sample_rows(const StepBatch& b, int numSampled, const SampleOutput& out) {
  const int vocab = config().vocabSize;
  pool_->parallel_for_tid(numSampled, [&](int i, int tid) {
    const int s = rowSeq_[i];
    const SampleParams p = sample_params(b, s, rows_[i]);
    SampleResult r;
    r.topIds = out.topIds + size_t(s) * out.topK;
    r.topLogprobs = out.topLogprobs + size_t(s) * out.topK;
    sampler_->sample(logits_.data() + size_t(i) * vocab, p, tid, &r);
    out.tokens[s] = r.token;
    out.logprobs[s] = r.logprob;
  });
}

// rows_ = the last logitRows[s] (1 if null) token rows of every sequence with sampleMask 1, seqRow_[s]
// = the first of them (seqRow_[S] = R); returns R. Throws E_BATCH on a count outside 1..its rows.
int Engine::logit_rows(const StepBatch& b, const int32_t* logitRows, int64_t lenLogitRows) {
  if (logitRows && lenLogitRows < b.numSeqs) fail("E_BATCH", "logitRows needs one entry per sequence");
  int R = 0;
  for (int s = 0; s < b.numSeqs; s++) {
    seqRow_[s] = R;
    if (!b.sampleMask[s]) continue;
    const int q0 = b.queryStartLoc[s], q1 = b.queryStartLoc[s + 1], n = logitRows ? logitRows[s] : 1;
    if (n < 1 || n > q1 - q0) fail("E_BATCH", "logitRows[" + std::to_string(s) + "] must be in 1.." + std::to_string(q1 - q0));
    for (int t = q1 - n; t < q1; t++) rows_[R++] = t;
  }
  seqRow_[b.numSeqs] = R;
  return R;
}

void Engine::logits(const StepBatch& b, const int32_t* logitRows, int64_t lenLogitRows, std::vector<float>* out) {
  check(b);
  const int R = logit_rows(b, logitRows, lenLogitRows);
  out->assign(size_t(R) * config().vocabSize, 0.f);
  backend_->forward(b, rows_.data(), R, out->data());
}

void Engine::argmax(const StepBatch& b, const int32_t* logitRows, int64_t lenLogitRows, std::vector<int32_t>* out) {
  logits(b, logitRows, lenLogitRows, &argmaxLogits_);
  const int V = config().vocabSize;
  const size_t R = argmaxLogits_.size() / V;
  out->resize(R);
  for (size_t r = 0; r < R; r++) {
    (*out)[r] = sampler_->argmax(argmaxLogits_.data() + r * V);  // the sampler's greedy choice
  }
}

void Engine::draft(const StepBatch& b, int k, const int32_t* numDraft, int64_t lenNumDraft, std::vector<int32_t>* out) {
  check(b);
  const int S = b.numSeqs, M = b.maxBlocksPerSeq, bs = blockSize_;
  if (k < 1) fail("E_BATCH", "draft: k must be at least 1");
  if (numDraft && lenNumDraft < S) fail("E_BATCH", "draft: numDraft needs one entry per sequence");
  for (int s = 0; s < S; s++) {
    if (numDraft && (numDraft[s] < 0 || numDraft[s] > k)) fail("E_BATCH", "draft: numDraft[" + std::to_string(s) + "] must be in 0.." + std::to_string(k));
  }
  const auto want = [&](int s) { return numDraft ? numDraft[s] : k; };
  DraftBuffers& d = draft_;
  if (d.blockTables.size() < size_t(S) * M) d.blockTables.resize(size_t(S) * M);
  StepBatch g = b;  // greedy: raw argmax whatever b asks
  g.tokenMask = nullptr, g.tokenMaskOffsets = nullptr;  // the target's masks are not the draft's
  g.temperature = g.minP = g.presencePenalty = g.frequencyPenalty = d.zerosF.data();
  g.topP = g.repetitionPenalty = d.onesF.data();
  g.topK = g.numLogprobs = g.penaltyOffsets = g.penaltyPromptLens = g.penaltyTokens = d.zerosI.data();
  g.seeds = reinterpret_cast<const uint32_t*>(d.zerosI.data());
  g.lenPenaltyTokens = 0;
  g.lenPenaltyOffsets = int64_t(d.zerosI.size());
  g.lenPerSeq = int64_t(d.zerosF.size());
  out->assign(size_t(S) * k, -1);
  const StepOutput& first = step(g);
  int n = 0;  // sequences still drafting, compacted into the front rows of the decode batch
  for (int s = 0; s < S; s++) {
    if (!b.sampleMask[s] || want(s) < 1) continue;
    (*out)[size_t(s) * k] = first.tokens[s];
    if (want(s) < 2) continue;
    d.seqOf[n] = s;
    if (b.loraSlots) d.loraSlots[n] = b.loraSlots[s];
    d.positions[n] = b.contextLens[s];
    std::copy_n(b.blockTables + size_t(s) * M, M, d.blockTables.begin() + size_t(n) * M);
    n++;
  }
  g.tokenIds = d.tokenIds.data(), g.positions = d.positions.data(), g.slotMapping = d.slotMapping.data();
  g.queryStartLoc = d.queryStartLoc.data(), g.contextLens = d.contextLens.data();
  g.blockTables = d.blockTables.data(), g.sampleMask = d.sampleMask.data();
  if (b.loraSlots) g.loraSlots = d.loraSlots.data();
  for (int j = 1; n > 0; j++) {
    for (int i = 0; i < n; i++) {
      const int s = d.seqOf[i], pos = d.positions[i];
      if (pos / bs >= M) fail("E_BATCH", "draft: sequence " + std::to_string(s) + " has no block-table room for position " + std::to_string(pos));
      d.tokenIds[i] = (*out)[size_t(s) * k + j - 1];
      d.slotMapping[i] = d.blockTables[size_t(i) * M + pos / bs] * bs + pos % bs;
      d.queryStartLoc[i] = i;
      d.contextLens[i] = pos + 1;
    }
    d.queryStartLoc[n] = n;
    g.numSeqs = g.numTokens = n;
    g.lenTokenIds = g.lenPositions = g.lenSlotMapping = g.lenContextLens = g.lenSampleMask = n;
    g.lenQueryStartLoc = n + 1;
    g.lenLoraSlots = n;
    g.lenBlockTables = int64_t(n) * M;
    const StepOutput& o = step(g);
    int m = 0;
    for (int i = 0; i < n; i++) {
      const int s = d.seqOf[i];
      (*out)[size_t(s) * k + j] = o.tokens[i];
      if (want(s) <= j + 1) continue;
      d.seqOf[m] = s;
      d.loraSlots[m] = d.loraSlots[i];
      d.positions[m] = d.positions[i] + 1;
      if (m != i) std::copy_n(d.blockTables.begin() + size_t(i) * M, M, d.blockTables.begin() + size_t(m) * M);
      m++;
    }
    n = m;
  }
}

int Engine::verify(const StepBatch& b, const int32_t* logitRows, int64_t lenLogitRows, const DraftProbs& q,
                   const VerifyOutputView& out) {
  check(b);
  const int S = b.numSeqs, V = config().vocabSize;
  const int R = logit_rows(b, logitRows, lenLogitRows);
  if (out.lenTokens < R) fail("E_BATCH", "verify output: tokens needs room for " + std::to_string(R) + " rows");
  if (out.lenNumAccepted < S) fail("E_BATCH", "verify output: numAccepted needs room for " + std::to_string(S) + " sequences");
  if (q.rowOf && q.lenRowOf < S) fail("E_BATCH", "verify: draftRows needs one entry per sequence");
  const int64_t numQ = q.probs ? q.lenProbs / V : 0;
  int n = 0;  // sequences to verify
  for (int s = 0; s < S; s++) {
    if (!b.sampleMask[s]) continue;
    const int k = seqRow_[s + 1] - seqRow_[s] - 1;
    // A mask holds for the next token only; guided sequences do not speculate (the engine's choice), so
    // a masked sequence is verified without proposals (k = 0: the step's own draw, masked).
    if (k > 0 && token_mask_of(b, s))
      fail("E_BATCH", "verify: sequence " + std::to_string(s) + " has a token mask and " + std::to_string(k) + " proposals; masked sequences take none");
    if (q.rowOf && q.rowOf[s] >= 0 && k > 0 && int64_t(q.rowOf[s]) + k > numQ)
      fail("E_BATCH", "verify: sequence " + std::to_string(s) + "'s draft rows " + std::to_string(q.rowOf[s]) + ".." +
                          std::to_string(q.rowOf[s] + k - 1) + " exceed the " + std::to_string(numQ) + " rows of draftProbs");
    rowSeq_[n++] = s;
  }
  if (verifyLogits_.size() < size_t(R) * V) verifyLogits_.resize(size_t(R) * V);
  backend_->forward(b, rows_.data(), R, verifyLogits_.data());
  for (int s = 0; s < S; s++) {
    if (!b.sampleMask[s]) out.numAccepted[s] = -1;
  }
  pool_->parallel_for_tid(n, [&](int i, int tid) {
    const int s = rowSeq_[i], r0 = seqRow_[s], k = seqRow_[s + 1] - r0 - 1, last = b.queryStartLoc[s + 1] - 1;
    VerifyInput in;
    in.rows = verifyLogits_.data() + size_t(r0) * V;
    in.k = k;
    in.proposals = b.tokenIds + last - k + 1;
    in.q = q.rowOf && q.rowOf[s] >= 0 && k > 0 ? q.probs + size_t(q.rowOf[s]) * V : nullptr;
    in.last = sample_params(b, s, last);
    const int a = verifier_->verify(*sampler_, in, tid, out.tokens + r0);
    std::fill(out.tokens + r0 + a + 1, out.tokens + r0 + k + 1, -1);
    out.numAccepted[s] = a;
  });
  return R;
}

}  // namespace flotilla
