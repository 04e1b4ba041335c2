// Module entry: loadModel, cpuFeatures, measureReadBandwidth, hasCuda (NativeBinding in native-types.ts).
#include <napi.h>

#include <new>

#include "../core/cpu-info.h"
#include "../core/engine.h"
#include "../core/error.h"
#include "../cpu/kernels.h"
#include "js-convert.h"
#include "js-model.h"
#ifdef FLOTILLA_HAVE_CUDA
#include "../cuda/cuda-api.h"
#endif

namespace flotilla {

namespace {

struct Progress {
  int done, total;
};

class LoadWorker : public Napi::AsyncProgressWorker<Progress> {
 public:
  LoadWorker(Napi::Env env, LoadSpec spec, Napi::Value onProgress)
      : Napi::AsyncProgressWorker<Progress>(env, "flotilla:load"), spec_(std::move(spec)), deferred_(Napi::Promise::Deferred::New(env)) {
    if (onProgress.IsFunction()) progress_ = Napi::Persistent(onProgress.As<Napi::Function>());
  }
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute(const ExecutionProgress& progress) override {
    try {
      auto report = [](void* ctx, int done, int total) {
        const Progress p{done, total};
        static_cast<const ExecutionProgress*>(ctx)->Send(&p, 1);
      };
      engine_ = Engine::load(spec_, report, const_cast<ExecutionProgress*>(&progress));
      return;
    } catch (const EngineError& e) {
      code_ = e.code(), message_ = e.what();
    } catch (const std::bad_alloc&) {
      code_ = "E_OOM", message_ = "out of memory while loading the model";
    } catch (const std::exception& e) {
      code_ = "E_INTERNAL", message_ = e.what();
    }
    SetError(message_);
  }
  void OnProgress(const Progress* p, size_t count) override {
    if (progress_.IsEmpty() || count == 0) return;
    Napi::HandleScope scope(Env());
    progress_.Call({Napi::Number::New(Env(), p->done), Napi::Number::New(Env(), p->total)});
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    deferred_.Resolve(JsModel::New(Env(), std::move(engine_)));
  }
  void OnError(const Napi::Error&) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(make_error(Env(), code_, message_).Value());
  }

 private:
  LoadSpec spec_;
  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference progress_;
  std::unique_ptr<Engine> engine_;
  std::string code_, message_;
};

Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LoadSpec spec;
  try {
    if (info.Length() < 1 || !info[0].IsObject()) fail("E_SHAPE", "loadModel(options) needs an options object");
    spec = parse_load_spec(info[0].As<Napi::Object>());
  } catch (const EngineError& e) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Reject(make_error(env, e.code(), e.what()).Value());
    return d.Promise();
  }
  auto* w = new LoadWorker(env, std::move(spec), info.Length() > 1 ? info[1] : env.Undefined());
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value CpuFeaturesJs(const Napi::CallbackInfo& info) {
  const CpuFeatures f = cpu_features();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("avx2", f.avx2);
  o.Set("fma", f.fma);
  o.Set("f16c", f.f16c);
  o.Set("avx512", f.avx512);
  // The kernel set a CPU model loaded now would use (after FLOTILLA_CPU_ISA / FLOTILLA_FORCE_SCALAR).
  o.Set("kernels", select_kernels().name);
  o.Set("threads", f.threads);
  return o;
}

Napi::Value MeasureReadBandwidth(const Napi::CallbackInfo& info) {
  double bytes = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : double(256 << 20);
  if (!(bytes > 0) || bytes > double(1ull << 36)) throw make_error(info.Env(), "E_SHAPE", "measureReadBandwidth(bytes): bytes must be in 1..2^36");
  try {
    return Napi::Number::New(info.Env(), measure_read_bandwidth(static_cast<size_t>(bytes)));
  } catch (const EngineError& e) {
    throw make_error(info.Env(), e.code(), e.what());
  }
}

Napi::Value MeasureDeviceBandwidth(const Napi::CallbackInfo& info) {
  double bytes = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : double(1 << 30);
  if (!(bytes > 0) || bytes > double(1ull << 36)) throw make_error(info.Env(), "E_SHAPE", "measureDeviceBandwidth(bytes): bytes must be in 1..2^36");
#ifdef FLOTILLA_HAVE_CUDA
  try {
    return Napi::Number::New(info.Env(), cuda_copy_bandwidth(static_cast<size_t>(bytes)));
  } catch (const EngineError& e) {
    throw make_error(info.Env(), e.code(), e.what());
  }
#else
  throw make_error(info.Env(), "E_DEVICE", "measureDeviceBandwidth: this addon was built without CUDA");
#endif
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  JsModel::Define(env);
  exports.Set("loadModel", Napi::Function::New(env, LoadModel, "loadModel"));
  exports.Set("cpuFeatures", Napi::Function::New(env, CpuFeaturesJs, "cpuFeatures"));
  exports.Set("measureReadBandwidth", Napi::Function::New(env, MeasureReadBandwidth, "measureReadBandwidth"));
  exports.Set("measureDeviceBandwidth", Napi::Function::New(env, MeasureDeviceBandwidth, "measureDeviceBandwidth"));
  exports.Set("hasCuda", Napi::Boolean::New(env, cuda_compiled()));
  return exports;
}

}  // namespace flotilla

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return flotilla::Init(env, exports); }

NODE_API_MODULE(flotilla_native, InitModule)
