// The AsyncWorkers behind NativeModel.exportKv() and .importKv() (core/kv-payload.h): the copy runs on a
// libuv worker thread under the model's step lock, so it never overlaps a step. exportKv writes into the
// caller's Uint8Array when given (no copy), else into a new ArrayBuffer made before the worker runs.
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "js-convert.h"
#include "js-model.h"

namespace flotilla {

class KvWorkerBase : public Napi::AsyncWorker {
 public:
  KvWorkerBase(Napi::Env env, std::shared_ptr<ModelState> state);
  ~KvWorkerBase() override;
  Napi::Promise promise() const { return deferred_.Promise(); }
  void reject(const std::string& code, const std::string& message);

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;
  virtual void run(Engine& engine) = 0;
  virtual Napi::Value result(Napi::Env env) = 0;

  std::shared_ptr<ModelState> state_;
  Napi::Promise::Deferred deferred_;
  std::vector<int32_t> blocks_;
  CallerArray<uint8_t> payload_;  // where exportKv writes / what importKv reads
  std::string code_, message_;
};

// exportKv(blocks, numTokens, out?)
class KvExportWorker : public KvWorkerBase {
 public:
  KvExportWorker(Napi::Env env, std::shared_ptr<ModelState> state, int numTokens)
      : KvWorkerBase(env, std::move(state)), numTokens_(numTokens) {}
  void bind(const Napi::CallbackInfo& info, size_t payloadBytes);  // throws EngineError

 private:
  void run(Engine& engine) override;
  Napi::Value result(Napi::Env env) override;
  int numTokens_;
  size_t bytes_ = 0;
};

// importKv(payload, blocks) → the payload's token count.
class KvImportWorker : public KvWorkerBase {
 public:
  using KvWorkerBase::KvWorkerBase;
  void bind(const Napi::CallbackInfo& info);  // throws EngineError

 private:
  void run(Engine& engine) override;
  Napi::Value result(Napi::Env env) override;
  int numTokens_ = 0;
};

}  // namespace flotilla
