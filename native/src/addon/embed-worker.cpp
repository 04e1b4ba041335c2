#include "embed-worker.h"

#include <cstring>

#include "../core/error.h"

namespace flotilla {

// embed(batch, pooling, out?): out is a Float32Array (absent, undefined or null: a new one is made).
void EmbedWorker::parse_args(const Napi::CallbackInfo& info) {
  if (info.Length() <= 2 || info[2].IsUndefined() || info[2].IsNull()) return;
  Napi::Object holder = Napi::Object::New(info.Env());
  holder.Set("out", info[2]);
  out_.bind(holder, "out", napi_float32_array, "embed(batch, pooling, out): ");
  hasOut_ = true;
}

void EmbedWorker::run(Engine& engine) {
  count_ = size_t(batch_.numSeqs) * engine.config().dim;
  EmbedOutputView v;
  if (hasOut_) {
    v.data = out_.data, v.len = out_.len;
  } else {  // sized for the batch, or for the most the engine takes (a bigger batch fails its checks)
    own_.resize(size_t(std::min(batch_.numSeqs, engine.maxBatchSeqs())) * engine.config().dim);
    v.data = own_.data(), v.len = int64_t(own_.size());
  }
  engine.embed(batch_, pooling_, v);
}

Napi::Value EmbedWorker::result(Napi::Env env) {
  if (hasOut_) return out_.view(env, count_);
  Napi::Float32Array a = Napi::Float32Array::New(env, count_);
  if (count_) std::memcpy(a.Data(), own_.data(), count_ * sizeof(float));
  return a;
}

}  // namespace flotilla
