#include "step-worker.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "../core/error.h"

namespace flotilla {

StepWorkerBase::StepWorkerBase(Napi::Env env, std::shared_ptr<ModelState> state)
    : Napi::AsyncWorker(env, "flotilla:step"), state_(std::move(state)), deferred_(Napi::Promise::Deferred::New(env)) {
  state_->inflight++;
}

StepWorkerBase::~StepWorkerBase() {
  state_->inflight--;
  state_->release_if_idle();
}

bool StepWorkerBase::prepare(Napi::Object batch, Napi::Value logitRows, const Napi::CallbackInfo& info) {
  try {
    batch_ = parse_batch(batch, &refs_);
    if (!logitRows.IsUndefined() && !logitRows.IsNull()) {
      logitRows_ = static_cast<const int32_t*>(typed_array_data(logitRows, napi_int32_array, "logitRows", &lenLogitRows_));
      logitRowsRef_ = Napi::Persistent(logitRows);
      static const int32_t kEmpty = 0;
      if (!logitRows_) logitRows_ = &kEmpty;  // an empty array has no data but was given: the Engine checks its length
    }
    parse_args(info);
    return true;
  } catch (const EngineError& e) {
    deferred_.Reject(make_error(Env(), e.code(), e.what()).Value());
    return false;
  }
}

void StepWorkerBase::Execute() {
  std::lock_guard<std::mutex> lock(state_->mu);
  try {
    if (state_->disposed || !state_->engine) fail("E_DISPOSED", "the model was disposed");
    run(*state_->engine);
  } catch (const EngineError& e) {
    code_ = e.code();
    message_ = e.what();
  } catch (const std::bad_alloc&) {
    code_ = "E_OOM";
    message_ = "out of memory during a step";
  } catch (const std::exception& e) {
    code_ = "E_INTERNAL";
    message_ = e.what();
  }
  if (!code_.empty()) SetError(message_);
}

void StepWorkerBase::OnOK() {
  Napi::HandleScope scope(Env());
  deferred_.Resolve(result(Env()));
}

void StepWorkerBase::OnError(const Napi::Error&) {
  Napi::HandleScope scope(Env());
  deferred_.Reject(make_error(Env(), code_, message_).Value());
}

namespace {

template <class Array, class T>
Array copy_array(Napi::Env env, const T* data, size_t n) {
  Array a = Array::New(env, n);
  if (n) std::memcpy(a.Data(), data, n * sizeof(T));
  return a;
}

}  // namespace

namespace {

// info[i] as an object, or an empty one when it is absent, undefined or null; E_BATCH when it is something else.
Napi::Object optional_object(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return Napi::Object();
  if (!info[i].IsObject()) fail("E_BATCH", std::string(what) + " must be an object");
  return info[i].As<Napi::Object>();
}

}  // namespace

void StepWorker::parse_args(const Napi::CallbackInfo& info) {
  Napi::Object out = optional_object(info, 1, "step(batch, out): out");
  if (out.IsEmpty()) return;
  const char* where = "step output: ";
  tokens_.bind(out, "tokens", napi_int32_array, where);
  logprobs_.bind(out, "logprobs", napi_float32_array, where);
  topIds_.bind(out, "topIds", napi_int32_array, where);
  topLogprobs_.bind(out, "topLogprobs", napi_float32_array, where);
  hasOut_ = true;
}

void StepWorker::run(Engine& engine) {
  StepOutputView v;
  if (hasOut_) {
    v.tokens = tokens_.data, v.logprobs = logprobs_.data, v.topIds = topIds_.data, v.topLogprobs = topLogprobs_.data;
    v.lenTokens = tokens_.len, v.lenLogprobs = logprobs_.len, v.lenTopIds = topIds_.len, v.lenTopLogprobs = topLogprobs_.len;
  } else {  // sized for the step, or for the most the engine takes (a bigger batch fails its checks)
    const size_t S = size_t(std::min(batch_.numSeqs, engine.maxBatchSeqs()));
    own_.tokens.resize(S), own_.logprobs.resize(S);
    own_.topIds.resize(S * kMaxLogprobs), own_.topLogprobs.resize(S * kMaxLogprobs);
    v.tokens = own_.tokens.data(), v.logprobs = own_.logprobs.data();
    v.topIds = own_.topIds.data(), v.topLogprobs = own_.topLogprobs.data();
    v.lenTokens = v.lenLogprobs = int64_t(S);
    v.lenTopIds = v.lenTopLogprobs = int64_t(S * kMaxLogprobs);
  }
  topK_ = engine.step(batch_, v);
}

Napi::Value StepWorker::result(Napi::Env env) {
  const size_t S = size_t(batch_.numSeqs), tops = S * topK_;
  Napi::Object r = Napi::Object::New(env);
  if (hasOut_) {
    r.Set("tokens", tokens_.view(env, S));
    r.Set("logprobs", logprobs_.view(env, S));
    r.Set("topIds", topIds_.view(env, tops));
    r.Set("topLogprobs", topLogprobs_.view(env, tops));
  } else {
    r.Set("tokens", copy_array<Napi::Int32Array>(env, own_.tokens.data(), S));
    r.Set("logprobs", copy_array<Napi::Float32Array>(env, own_.logprobs.data(), S));
    r.Set("topIds", copy_array<Napi::Int32Array>(env, own_.topIds.data(), tops));
    r.Set("topLogprobs", copy_array<Napi::Float32Array>(env, own_.topLogprobs.data(), tops));
  }
  r.Set("topK", topK_);
  return r;
}

void VerifyWorker::parse_args(const Napi::CallbackInfo& info) {
  Napi::Object draft = optional_object(info, 2, "verify(batch, logitRows, draft): draft");
  if (!draft.IsEmpty()) {
    probs_.bind(draft, "probs", napi_float64_array, "verify draft: ");
    probRows_.bind(draft, "rows", napi_int32_array, "verify draft: ");
    static int32_t kEmpty = 0;
    if (!probRows_.data) probRows_.data = &kEmpty;  // given but empty: the Engine checks its length
  }
  Napi::Object out = optional_object(info, 3, "verify(batch, logitRows, draft, out): out");
  if (out.IsEmpty()) return;
  tokens_.bind(out, "tokens", napi_int32_array, "verify output: ");
  numAccepted_.bind(out, "numAccepted", napi_int32_array, "verify output: ");
  hasOut_ = true;
}

void VerifyWorker::run(Engine& engine) {
  DraftProbs q;
  q.probs = probs_.data, q.lenProbs = probs_.len, q.rowOf = probRows_.data, q.lenRowOf = probRows_.len;
  VerifyOutputView v;
  if (hasOut_) {
    v.tokens = tokens_.data, v.lenTokens = tokens_.len;
    v.numAccepted = numAccepted_.data, v.lenNumAccepted = numAccepted_.len;
  } else {  // sized for the step, or for the most the engine takes (a bigger batch fails its checks)
    ownTokens_.resize(size_t(std::min(batch_.numTokens, engine.maxBatchTokens())));
    ownAccepted_.resize(size_t(std::min(batch_.numSeqs, engine.maxBatchSeqs())));
    v.tokens = ownTokens_.data(), v.lenTokens = int64_t(ownTokens_.size());
    v.numAccepted = ownAccepted_.data(), v.lenNumAccepted = int64_t(ownAccepted_.size());
  }
  numRows_ = engine.verify(batch_, logitRows_, lenLogitRows_, q, v);
}

Napi::Value VerifyWorker::result(Napi::Env env) {
  const size_t S = size_t(batch_.numSeqs), R = size_t(numRows_);
  Napi::Object r = Napi::Object::New(env);
  if (hasOut_) {
    r.Set("tokens", tokens_.view(env, R));
    r.Set("numAccepted", numAccepted_.view(env, S));
  } else {
    r.Set("tokens", copy_array<Napi::Int32Array>(env, ownTokens_.data(), R));
    r.Set("numAccepted", copy_array<Napi::Int32Array>(env, ownAccepted_.data(), S));
  }
  return r;
}

void LogitsWorker::run(Engine& engine) { engine.logits(batch_, logitRows_, lenLogitRows_, &logits_); }

Napi::Value LogitsWorker::result(Napi::Env env) {
  return copy_array<Napi::Float32Array>(env, logits_.data(), logits_.size());
}

void ArgmaxWorker::run(Engine& engine) { engine.argmax(batch_, logitRows_, lenLogitRows_, &ids_); }

Napi::Value ArgmaxWorker::result(Napi::Env env) { return copy_array<Napi::Int32Array>(env, ids_.data(), ids_.size()); }

void DraftWorker::run(Engine& engine) { engine.draft(batch_, k_, logitRows_, lenLogitRows_, &ids_); }

Napi::Value DraftWorker::result(Napi::Env env) { return copy_array<Napi::Int32Array>(env, ids_.data(), ids_.size()); }

}  // namespace flotilla
