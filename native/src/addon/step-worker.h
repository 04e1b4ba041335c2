// The AsyncWorkers behind NativeModel.step(), .logits(), .argmax() and .draft(): parse on the JS thread, run the Engine on
// a libuv worker thread, settle the Promise back on the JS thread.
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "js-convert.h"
#include "js-model.h"

namespace flotilla {

class StepWorkerBase : public Napi::AsyncWorker {
 public:
  StepWorkerBase(Napi::Env env, std::shared_ptr<ModelState> state);
  ~StepWorkerBase() override;
  Napi::Promise promise() const { return deferred_.Promise(); }
  // Parses the batch; on failure rejects the Promise and returns false (the worker is then deleted).
  bool prepare(Napi::Object batch, Napi::Value logitRows);

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;
  virtual void run(Engine& engine) = 0;
  virtual Napi::Value result(Napi::Env env) = 0;

  std::shared_ptr<ModelState> state_;
  Napi::Promise::Deferred deferred_;
  BatchRefs refs_;
  Napi::Reference<Napi::Value> logitRowsRef_;
  StepBatch batch_;
  const int32_t* logitRows_ = nullptr;
  int64_t lenLogitRows_ = 0;
  std::string code_, message_;
};

class StepWorker : public StepWorkerBase {
 public:
  using StepWorkerBase::StepWorkerBase;

 private:
  void run(Engine& engine) override;
  Napi::Value result(Napi::Env env) override;
  StepOutput out_;  // copied from the Engine's buffers before the next step may reuse them
};

class LogitsWorker : public StepWorkerBase {
 public:
  using StepWorkerBase::StepWorkerBase;

 private:
  void run(Engine& engine) override;
  Napi::Value result(Napi::Env env) override;
  std::vector<float> logits_;
};

class ArgmaxWorker : public StepWorkerBase {
 public:
  using StepWorkerBase::StepWorkerBase;

 private:
  void run(Engine& engine) override;
  Napi::Value result(Napi::Env env) override;
  std::vector<int32_t> ids_;
};

// `logitRows` of the base carries numDraft here.
class DraftWorker : public StepWorkerBase {
 public:
  DraftWorker(Napi::Env env, std::shared_ptr<ModelState> state, int k) : StepWorkerBase(env, std::move(state)), k_(k) {}

 private:
  void run(Engine& engine) override;
  Napi::Value result(Napi::Env env) override;
  int k_;
  std::vector<int32_t> ids_;
};

}  // namespace flotilla
