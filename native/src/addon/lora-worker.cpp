// NativeModel.loadLora(slot, spec) / unloadLora(slot): filling a slot of the LoRA pool runs off the
// event loop and under the model's step mutex, so it never overlaps a step (which reads the slots).
#include <napi.h>

#include <new>

#include "../core/error.h"
#include "js-convert.h"
#include "js-model.h"

namespace flotilla {

namespace {

class LoraWorker : public Napi::AsyncWorker {
 public:
  // spec null: unload.
  LoraWorker(Napi::Env env, std::shared_ptr<ModelState> state, int slot, std::unique_ptr<LoraSpec> spec)
      : Napi::AsyncWorker(env, "flotilla:lora"), state_(std::move(state)), slot_(slot), spec_(std::move(spec)),
        deferred_(Napi::Promise::Deferred::New(env)) {
    state_->inflight++;
  }
  ~LoraWorker() override {
    state_->inflight--;
    state_->release_if_idle();
  }
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    try {
      if (state_->disposed || !state_->engine) fail("E_DISPOSED", "the model was disposed");
      if (spec_) state_->engine->load_lora(slot_, *spec_);
      else state_->engine->unload_lora(slot_);
      return;
    } catch (const EngineError& e) {
      code_ = e.code(), message_ = e.what();
    } catch (const std::bad_alloc&) {
      code_ = "E_OOM", message_ = "out of memory while loading a LoRA adapter";
    } catch (const std::exception& e) {
      code_ = "E_INTERNAL", message_ = e.what();
    }
    SetError(message_);
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    deferred_.Resolve(Env().Undefined());
  }
  void OnError(const Napi::Error&) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(make_error(Env(), code_, message_).Value());
  }

 private:
  std::shared_ptr<ModelState> state_;
  int slot_;
  std::unique_ptr<LoraSpec> spec_;
  Napi::Promise::Deferred deferred_;
  std::string code_, message_;
};

int slot_arg(const Napi::CallbackInfo& info, const char* fn) {
  const double v = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  if (!(v >= 0 && v < 1024) || v != static_cast<int>(v)) fail("E_SHAPE", std::string(fn) + "(slot, ...): slot must be an integer in 0..1023");
  return static_cast<int>(v);
}

}  // namespace

// loadLora(slot, { files, tensors, scale }): resolves when the slot holds the adapter.
Napi::Value JsModel::LoadLora(const Napi::CallbackInfo& info) {
  if (state_->disposed) throw make_error(info.Env(), "E_DISPOSED", "the model was disposed");
  try {
    const int slot = slot_arg(info, "loadLora");
    if (info.Length() < 2 || !info[1].IsObject()) fail("E_SHAPE", "loadLora(slot, spec): spec must be an object");
    auto spec = std::make_unique<LoraSpec>(parse_lora_spec(info[1].As<Napi::Object>()));
    auto* w = new LoraWorker(info.Env(), state_, slot, std::move(spec));
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  } catch (const EngineError& e) {
    throw make_error(info.Env(), e.code(), e.what());
  }
}

// unloadLora(slot): resolves when the slot is empty (after any step in flight).
Napi::Value JsModel::UnloadLora(const Napi::CallbackInfo& info) {
  if (state_->disposed) throw make_error(info.Env(), "E_DISPOSED", "the model was disposed");
  try {
    auto* w = new LoraWorker(info.Env(), state_, slot_arg(info, "unloadLora"), nullptr);
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  } catch (const EngineError& e) {
    throw make_error(info.Env(), e.code(), e.what());
  }
}

Napi::Value JsModel::MaxLoras(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), maxLoras_); }
Napi::Value JsModel::MaxLoraRank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), maxLoraRank_); }

}  // namespace flotilla
