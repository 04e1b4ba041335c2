#include "step-worker.h"

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

bool StepWorkerBase::prepare(Napi::Object batch, Napi::Value logitRows) {
  try {
    batch_ = parse_batch(batch, &refs_);
    if (!logitRows.IsUndefined() && !logitRows.IsNull()) {
      logitRows_ = static_cast<const int32_t*>(typed_array_data(logitRows, napi_int32_array, "logitRows", &lenLogitRows_));
      logitRowsRef_ = Napi::Persistent(logitRows);
    }
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

void StepWorker::run(Engine& engine) {
  const StepOutput& o = engine.step(batch_);
  const size_t S = o.numSeqs, tops = S * o.topK;
  out_.numSeqs = o.numSeqs;
  out_.topK = o.topK;
  out_.tokens.assign(o.tokens.begin(), o.tokens.begin() + S);
  out_.logprobs.assign(o.logprobs.begin(), o.logprobs.begin() + S);
  out_.topIds.assign(o.topIds.begin(), o.topIds.begin() + tops);
  out_.topLogprobs.assign(o.topLogprobs.begin(), o.topLogprobs.begin() + tops);
}

Napi::Value StepWorker::result(Napi::Env env) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("tokens", copy_array<Napi::Int32Array>(env, out_.tokens.data(), out_.tokens.size()));
  r.Set("logprobs", copy_array<Napi::Float32Array>(env, out_.logprobs.data(), out_.logprobs.size()));
  r.Set("topK", out_.topK);
  r.Set("topIds", copy_array<Napi::Int32Array>(env, out_.topIds.data(), out_.topIds.size()));
  r.Set("topLogprobs", copy_array<Napi::Float32Array>(env, out_.topLogprobs.data(), out_.topLogprobs.size()));
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
