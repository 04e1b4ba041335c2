#include "kv-worker.h"

#include <new>

#include "../core/error.h"

namespace flotilla {

namespace {

std::vector<int32_t> block_list(Napi::Value v, const char* where) {
  int64_t n = 0;
  const auto* p = static_cast<const int32_t*>(typed_array_data(v, napi_int32_array, "blocks", &n, where));
  return std::vector<int32_t>(p, p + n);
}

}  // namespace

KvWorkerBase::KvWorkerBase(Napi::Env env, std::shared_ptr<ModelState> state)
    : Napi::AsyncWorker(env, "flotilla:kv"), state_(std::move(state)), deferred_(Napi::Promise::Deferred::New(env)) {
  state_->inflight++;
}

KvWorkerBase::~KvWorkerBase() {
  state_->inflight--;
  state_->release_if_idle();
}

void KvWorkerBase::reject(const std::string& code, const std::string& message) {
  deferred_.Reject(make_error(Env(), code, message).Value());
}

void KvWorkerBase::Execute() {
  std::lock_guard<std::mutex> lock(state_->mu);
  try {
    if (state_->disposed || !state_->engine) fail("E_DISPOSED", "the model was disposed");
    run(*state_->engine);
  } catch (const EngineError& e) {
    code_ = e.code(), message_ = e.what();
  } catch (const std::bad_alloc&) {
    code_ = "E_OOM", message_ = "out of memory during a KV transfer";
  } catch (const std::exception& e) {
    code_ = "E_INTERNAL", message_ = e.what();
  }
  if (!code_.empty()) SetError(message_);
}

void KvWorkerBase::OnOK() {
  Napi::HandleScope scope(Env());
  deferred_.Resolve(result(Env()));
}

void KvWorkerBase::OnError(const Napi::Error&) {
  Napi::HandleScope scope(Env());
  reject(code_, message_);
}

// out absent, undefined or null: a new Uint8Array of exactly the payload's size.
void KvExportWorker::bind(const Napi::CallbackInfo& info, size_t payloadBytes) {
  blocks_ = block_list(info[0], "exportKv(blocks, numTokens, out?): ");
  bytes_ = payloadBytes;
  Napi::Object holder = Napi::Object::New(info.Env());
  if (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNull()) holder.Set("out", info[2]);
  else holder.Set("out", Napi::Uint8Array::New(info.Env(), payloadBytes));
  payload_.bind(holder, "out", napi_uint8_array, "exportKv(blocks, numTokens, out?): ");
}

void KvExportWorker::run(Engine& engine) {
  engine.export_kv(blocks_.data(), int(blocks_.size()), numTokens_, payload_.data, size_t(payload_.len));
}

Napi::Value KvExportWorker::result(Napi::Env env) { return payload_.view(env, bytes_); }

void KvImportWorker::bind(const Napi::CallbackInfo& info) {
  Napi::Object holder = Napi::Object::New(info.Env());
  holder.Set("payload", info.Length() > 0 ? info[0] : info.Env().Undefined());
  payload_.bind(holder, "payload", napi_uint8_array, "importKv(payload, blocks): ");
  blocks_ = block_list(info.Length() > 1 ? info[1] : info.Env().Undefined(), "importKv(payload, blocks): ");
}

void KvImportWorker::run(Engine& engine) {
  numTokens_ = engine.import_kv(payload_.data, size_t(payload_.len), blocks_.data(), int(blocks_.size()));
}

Napi::Value KvImportWorker::result(Napi::Env env) { return Napi::Number::New(env, numTokens_); }

}  // namespace flotilla
