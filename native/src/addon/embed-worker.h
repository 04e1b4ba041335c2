// The AsyncWorker behind NativeModel.embed(batch, pooling, out?): Engine::embed on a libuv worker thread,
// the (S, dim) vectors written into the caller's Float32Array when given (the Promise resolves to a view
// of its first S x dim floats), else into a new one.
#pragma once
#include <vector>

#include "step-worker.h"

namespace flotilla {

class EmbedWorker : public StepWorkerBase {
 public:
  EmbedWorker(Napi::Env env, std::shared_ptr<ModelState> state, Pooling pooling)
      : StepWorkerBase(env, std::move(state)), pooling_(pooling) {}

 private:
  void parse_args(const Napi::CallbackInfo& info) override;
  void run(Engine& engine) override;
  Napi::Value result(Napi::Env env) override;
  Pooling pooling_;
  bool hasOut_ = false;
  CallerArray<float> out_;
  std::vector<float> own_;
  size_t count_ = 0;
};

}  // namespace flotilla
