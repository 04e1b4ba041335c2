// The AsyncWorkers behind NativeModel.step(), .logits(), .argmax(), .draft() and .verify(): parse on the JS thread,
// run the Engine on a libuv worker thread, settle the Promise back on the JS thread. step() and verify() write
// their results straight into the caller's typed arrays when it passes them (no copy; the Promise resolves to
// views of them), else into the worker's buffers, copied once into new typed arrays.
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
  // Parses the batch, logitRows and the call's further arguments (parse_args); on failure rejects the
  // Promise and returns false (the worker is then deleted).
  bool prepare(Napi::Object batch, Napi::Value logitRows, const Napi::CallbackInfo& info);

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;
  virtual void parse_args(const Napi::CallbackInfo& info) { (void)info; }  // throws EngineError
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

// step(batch, out?): out = {tokens, logprobs, topIds, topLogprobs} typed arrays with room for the step.
class StepWorker : public StepWorkerBase {
 public:
  using StepWorkerBase::StepWorkerBase;

 private:
  void parse_args(const Napi::CallbackInfo& info) override;
  void run(Engine& engine) override;
  Napi::Value result(Napi::Env env) override;
  bool hasOut_ = false;
  CallerArray<int32_t> tokens_, topIds_;
  CallerArray<float> logprobs_, topLogprobs_;
  StepOutput own_;  // without `out`: the Engine writes here, copied once into new typed arrays
  int topK_ = 0;
};

// verify(batch, logitRows, draft?, out?): draft = {probs: Float64Array, rows: Int32Array}, out = {tokens, numAccepted}.
class VerifyWorker : public StepWorkerBase {
 public:
  using StepWorkerBase::StepWorkerBase;

 private:
  void parse_args(const Napi::CallbackInfo& info) override;
  void run(Engine& engine) override;
  Napi::Value result(Napi::Env env) override;
  CallerArray<double> probs_;
  CallerArray<int32_t> probRows_;
  bool hasOut_ = false;
  CallerArray<int32_t> tokens_, numAccepted_;
  std::vector<int32_t> ownTokens_, ownAccepted_;
  int numRows_ = 0;
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
