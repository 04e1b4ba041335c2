// The Llama forward pass on the CPU over one varlen step: every matmul covers all T tokens of the step.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "../backend.h"
#include "../core/kv-cache.h"
#include "attention.h"
#include "lora-apply.h"
#include "matmul.h"
#include "ops.h"

namespace flotilla {

namespace {

// Activations preallocated for maxBatchTokens rows; nothing is allocated per step.
struct Scratch {
  AlignedBuffer x, xb, q, k, v, att, h1, h3, fin, xq, rope;
  Scratch(const ModelConfig& c, int T, const CpuKernels& kern, bool f32Act) {
    const size_t qDim = size_t(c.nHeads) * c.headDim(), wide = std::max<size_t>({size_t(c.dim), qDim, size_t(c.hiddenDim)});
    x = AlignedBuffer(4 * T * size_t(c.dim), "activations");
    xb = AlignedBuffer(4 * T * std::max<size_t>(c.dim, qDim), "activations");
    q = AlignedBuffer(4 * T * qDim, "activations");
    k = AlignedBuffer(4 * T * size_t(c.kvDim()), "activations");
    v = AlignedBuffer(4 * T * size_t(c.kvDim()), "activations");
    att = AlignedBuffer(4 * T * qDim, "activations");
    h1 = AlignedBuffer(4 * T * size_t(c.hiddenDim), "activations");
    h3 = AlignedBuffer(4 * T * size_t(c.hiddenDim), "activations");
    fin = AlignedBuffer(4 * T * size_t(c.dim), "activations");
    // f32 activations gather act-order (GPTQ desc_act) rows here as floats
    xq = AlignedBuffer(std::max(kern.quant_act_bytes(int(wide)), f32Act ? 4 * wide : 0) * T, "activations");
    rope = AlignedBuffer(4 * T * size_t(c.headDim()), "activations");
  }
};

// FLOTILLA_CPU_PROFILE=1: wall time per phase of the forward pass, summed over every step and printed
// to stderr when the backend goes (where a step's time goes, barriers included). Off: one branch per phase.
class PhaseClock {
 public:
  enum Phase { kEmbed, kNorm, kQkv, kRope, kKvWrite, kAttn, kWo, kFfnNorm, kW1W3, kSwiglu, kW2, kAdd, kHead, kCount };
  PhaseClock() : on_(std::getenv("FLOTILLA_CPU_PROFILE") && std::getenv("FLOTILLA_CPU_PROFILE")[0] == '1') {}
  ~PhaseClock() {
    if (!on_ || steps_ == 0) return;
    static const char* names[kCount] = {"embed+rope angles", "attn norm", "wq|wk|wv", "rope", "kv write", "attention", "wo",
                                        "add+ffn norm", "w1|w3", "swiglu", "w2", "add", "norm+classifier"};
    double total = 0;
    for (double x : ns_) total += x;
    std::fprintf(stderr, "[flotilla cpu profile] %ld steps, %ld tokens, %.1f ms in forward:", steps_, tokens_, total / 1e6);
    for (int i = 0; i < kCount; i++) std::fprintf(stderr, " %s %.1f%%", names[i], 100 * ns_[i] / total);
    std::fprintf(stderr, "\n");
  }
  void start_step(int tokens) {
    if (!on_) return;
    steps_++, tokens_ += tokens;
    last_ = now();
  }
  void lap(Phase p) {
    if (!on_) return;
    const int64_t t = now();
    ns_[p] += double(t - last_);
    last_ = t;
  }

 private:
  static int64_t now() { return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
  bool on_;
  long steps_ = 0, tokens_ = 0;
  int64_t last_ = 0;
  double ns_[kCount] = {};
};

class CpuBackend : public Backend {
 public:
  CpuBackend(ModelWeights& w, const BackendOptions& o, ThreadPool& pool)
      : w_(w), c_(w.config), pool_(pool), kern_(select_kernels()), kv_(c_, o.numBlocks, o.blockSize, o.kvType, kern_.to_f16),
        attn_(c_, o.maxBatchTokens, o.maxBatchSeqs), s_(c_, o.maxBatchTokens, kern_, o.f32Activations), f32Act_(o.f32Activations), invFreq_(c_.headDim() / 2),
        loraPool_(o.lora), lora_(c_, o.lora ? o.maxBatchTokens : 0, std::max(1, o.maxLoraRank)) {
    kv_.prefault(pool_);
    if (kern_.panels) {  // the kernels read F32/F16/BF16/Q8_0/Q4_0 matrices (and the embedding lookup reads rows) from panels
      std::vector<Weight*> mats = {&w.tokEmbeddings, &w.output};
      for (LayerWeights& l : w.layers)
        for (Weight* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w1, &l.w2, &l.w3}) mats.push_back(m);
      to_panels(mats, pool, w.panelArenas);
    }
    for (int i = 0; i < c_.headDim() / 2; i++)
      invFreq_[i] = 1.0f / powf(c_.ropeTheta, static_cast<float>(2 * i) / static_cast<float>(c_.headDim()));  // float, as run.c and HF
  }

  const char* device() const override { return "cpu"; }
  const char* kernels() const override { return kern_.name; }
  size_t kvBytes() const override { return kv_.bytes(); }
  int numBlocks() const override { return kv_.numBlocks(); }

  // One block per pool item: each is a few runs of KBs, copied by whichever thread claims it.
  bool export_kv_blocks(const int32_t* blocks, int n, uint8_t* payload) override {
    const size_t bb = kv_.transfer_block_bytes();
    pool_.parallel_for(n, [&](int i) { kv_.export_block(blocks[i], payload + i * bb); });
    return true;
  }
  bool import_kv_blocks(const int32_t* blocks, int n, const uint8_t* payload) override {
    const size_t bb = kv_.transfer_block_bytes();
    pool_.parallel_for(n, [&](int i) { kv_.import_block(blocks[i], payload + i * bb); });
    return true;
  }

  void forward(const StepBatch& b, const int32_t* rows, int numRows, float* logits) override {
    const int dim = c_.dim;
    float* fin = s_.fin.as<float>();
    trunk(b, rows, numRows, fin);
    const MatmulOut out{&w_.classifier(), logits};
    matmul_parallel(pool_, kern_, fin, numRows, dim, s_.xq.as<uint8_t>(), &out, 1, f32Act_);
    clock_.lap(PhaseClock::kHead);
  }

  void forward_hidden(const StepBatch& b, const int32_t* rows, int numRows, float* hidden) override {
    trunk(b, rows, numRows, hidden);
    clock_.lap(PhaseClock::kHead);
  }

 private:
  // Embedding lookup, every layer, then the final norm of `rows` into `fin` (numRows, dim).
  void trunk(const StepBatch& b, const int32_t* rows, int numRows, float* fin) {
    const int T = b.numTokens, dim = c_.dim;
    float* x = s_.x.as<float>();
    clock_.start_step(T);
    lora_.begin(b, loraPool_);
    const int hd = c_.headDim();
    rows_parallel(T, [&](int t) {
      read_row(w_.tokEmbeddings, b.tokenIds[t], x + size_t(t) * dim);
      rope_angles(b.positions[t], invFreq_.data(), hd / 2, s_.rope.as<float>() + size_t(t) * hd);
    });
    clock_.lap(PhaseClock::kEmbed);
    for (int l = 0; l < c_.nLayers; l++) layer(b, l);
    rows_parallel(numRows, [&](int i) { kern_.rmsnorm(fin + size_t(i) * dim, x + size_t(rows[i]) * dim, w_.norm.f32(), dim, c_.normEps); });
  }

  template <class F>
  void rows_parallel(int n, F&& fn) {
    if (n < 16) {
      for (int i = 0; i < n; i++) fn(i);
    } else {
      pool_.parallel_for(n, fn);
    }
  }

  void layer(const StepBatch& b, int l) {
    const LayerWeights& lw = w_.layers[l];
    const int T = b.numTokens, dim = c_.dim, qDim = c_.nHeads * c_.headDim(), kvDim = c_.kvDim(), hid = c_.hiddenDim;
    float *x = s_.x.as<float>(), *xb = s_.xb.as<float>(), *q = s_.q.as<float>(), *k = s_.k.as<float>(),
          *v = s_.v.as<float>(), *att = s_.att.as<float>(), *h1 = s_.h1.as<float>(), *h3 = s_.h3.as<float>();
    uint8_t* xq = s_.xq.as<uint8_t>();

    rows_parallel(T, [&](int t) { kern_.rmsnorm(xb + size_t(t) * dim, x + size_t(t) * dim, lw.attnNorm.f32(), dim, c_.normEps); });
    clock_.lap(PhaseClock::kNorm);
    const MatmulOut qkv[3] = {{&lw.wq, q}, {&lw.wk, k}, {&lw.wv, v}};
    matmul_parallel(pool_, kern_, xb, T, dim, xq, qkv, 3, f32Act_);
    const LoraOut qkvLora[3] = {{kLoraQ, q}, {kLoraK, k}, {kLoraV, v}};
    lora_.apply(pool_, kern_, l, xb, dim, qkvLora, 3);
    clock_.lap(PhaseClock::kQkv);
    const float* cosSin = s_.rope.as<float>();
    rows_parallel(T, [&](int t) { rope(q + size_t(t) * qDim, k + size_t(t) * kvDim, cosSin + size_t(t) * c_.headDim(), c_); });
    clock_.lap(PhaseClock::kRope);
    kv_.write(pool_, l, k, v, T, b.slotMapping);
    clock_.lap(PhaseClock::kKvWrite);
    attn_.run(pool_, kern_, kv_, l, b, q, att);
    clock_.lap(PhaseClock::kAttn);
    const MatmulOut o{&lw.wo, xb};
    matmul_parallel(pool_, kern_, att, T, qDim, xq, &o, 1, f32Act_);
    const LoraOut oLora{kLoraO, xb};
    lora_.apply(pool_, kern_, l, att, qDim, &oLora, 1);
    clock_.lap(PhaseClock::kWo);
    rows_parallel(T, [&](int t) {
      kern_.add_into(x + size_t(t) * dim, xb + size_t(t) * dim, dim);
      kern_.rmsnorm(xb + size_t(t) * dim, x + size_t(t) * dim, lw.ffnNorm.f32(), dim, c_.normEps);
    });
    clock_.lap(PhaseClock::kFfnNorm);
    const MatmulOut gateUp[2] = {{&lw.w1, h1}, {&lw.w3, h3}};
    matmul_parallel(pool_, kern_, xb, T, dim, xq, gateUp, 2, f32Act_);
    const LoraOut gateUpLora[2] = {{kLoraGate, h1}, {kLoraUp, h3}};
    lora_.apply(pool_, kern_, l, xb, dim, gateUpLora, 2);
    clock_.lap(PhaseClock::kW1W3);
    rows_parallel(T, [&](int t) { kern_.swiglu(h1 + size_t(t) * hid, h3 + size_t(t) * hid, hid); });
    clock_.lap(PhaseClock::kSwiglu);
    const MatmulOut down{&lw.w2, xb};
    matmul_parallel(pool_, kern_, h1, T, hid, xq, &down, 1, f32Act_);
    const LoraOut downLora{kLoraDown, xb};
    lora_.apply(pool_, kern_, l, h1, hid, &downLora, 1);
    clock_.lap(PhaseClock::kW2);
    rows_parallel(T, [&](int t) { kern_.add_into(x + size_t(t) * dim, xb + size_t(t) * dim, dim); });
    clock_.lap(PhaseClock::kAdd);
  }

  const ModelWeights& w_;
  const ModelConfig& c_;
  ThreadPool& pool_;
  const CpuKernels& kern_;
  KvCache kv_;
  PagedAttention attn_;
  Scratch s_;
  bool f32Act_;  // activations 'f32' (BackendOptions::f32Activations)
  std::vector<float> invFreq_;
  const LoraPool* loraPool_;
  LoraApply lora_;
  PhaseClock clock_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(ModelWeights& w, const BackendOptions& o, ThreadPool& pool) {
  return std::make_unique<CpuBackend>(w, o, pool);
}

}  // namespace flotilla
