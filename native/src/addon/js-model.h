// NativeModel: the JS object over one Engine. step()/logits()/argmax()/draft()/verify() run as AsyncWorkers returning Promises;
// the Engine is freed by dispose() once no step is in flight.
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "../core/engine.h"

namespace flotilla {

struct ModelState {
  std::mutex mu;  // one step at a time: later calls wait on their worker thread
  std::unique_ptr<Engine> engine;
  std::atomic<bool> disposed{false};
  int inflight = 0;  // touched on the JS thread only

  void release_if_idle() {
    if (disposed && inflight == 0) engine.reset();
  }
};

class JsModel : public Napi::ObjectWrap<JsModel> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object New(Napi::Env env, std::unique_ptr<Engine> engine);
  explicit JsModel(const Napi::CallbackInfo& info);

 private:
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value Logits(const Napi::CallbackInfo& info);
  Napi::Value Argmax(const Napi::CallbackInfo& info);
  Napi::Value Draft(const Napi::CallbackInfo& info);
  Napi::Value Verify(const Napi::CallbackInfo& info);
  Napi::Value Embed(const Napi::CallbackInfo& info);
  Napi::Value ExportKv(const Napi::CallbackInfo& info);
  Napi::Value ImportKv(const Napi::CallbackInfo& info);
  Napi::Value KvFingerprint(const Napi::CallbackInfo& info);
  Napi::Value KvBlockBytes(const Napi::CallbackInfo& info);
  void Dispose(const Napi::CallbackInfo& info);
  Napi::Value Config(const Napi::CallbackInfo& info);
  Napi::Value BlockSize(const Napi::CallbackInfo& info);
  Napi::Value NumBlocks(const Napi::CallbackInfo& info);
  Napi::Value KvDtype(const Napi::CallbackInfo& info);
  Napi::Value Backend(const Napi::CallbackInfo& info);
  Napi::Value Kernels(const Napi::CallbackInfo& info);
  Napi::Value WeightBytes(const Napi::CallbackInfo& info);
  Napi::Value NumThreads(const Napi::CallbackInfo& info);

  std::shared_ptr<ModelState> state_;
  Napi::ObjectReference config_;
  ModelConfig configValue_;
  int blockSize_ = 0, numBlocks_ = 0, numThreads_ = 0;
  bool kvF16_ = false;
  KvPoolInfo kvPool_;
  double weightBytes_ = 0;
  std::string backend_, kernels_;
};

}  // namespace flotilla
