#include "js-model.h"

#include <cstdio>

#include "../core/error.h"
#include "js-convert.h"
#include "embed-worker.h"
#include "kv-worker.h"
#include "step-worker.h"

namespace flotilla {

namespace {
struct Ctor {
  Napi::FunctionReference fn;
};
}  // namespace

Napi::Function JsModel::Define(Napi::Env env) {
  Napi::Function fn = DefineClass(env, "NativeModel",
                                  {InstanceMethod<&JsModel::Step>("step"), InstanceMethod<&JsModel::Logits>("logits"),
                                   InstanceMethod<&JsModel::Argmax>("argmax"), InstanceMethod<&JsModel::Draft>("draft"),
                                   InstanceMethod<&JsModel::Verify>("verify"),
                                   InstanceMethod<&JsModel::Embed>("embed"),
                                   InstanceMethod<&JsModel::ExportKv>("exportKv"),
                                   InstanceMethod<&JsModel::ImportKv>("importKv"),
                                   InstanceAccessor<&JsModel::KvFingerprint>("kvFingerprint"),
                                   InstanceAccessor<&JsModel::KvBlockBytes>("kvBlockBytes"),
                                   InstanceMethod<&JsModel::Dispose>("dispose"),
                                   InstanceAccessor<&JsModel::Config>("config"),
                                   InstanceAccessor<&JsModel::BlockSize>("blockSize"),
                                   InstanceAccessor<&JsModel::NumBlocks>("numBlocks"),
                                   InstanceAccessor<&JsModel::KvDtype>("kvDtype"),
                                   InstanceAccessor<&JsModel::Backend>("backend"),
                                   InstanceAccessor<&JsModel::Kernels>("kernels"),
                                   InstanceAccessor<&JsModel::WeightBytes>("weightBytes"),
                                   InstanceAccessor<&JsModel::NumThreads>("numThreads")});
  auto* ctor = new Ctor{Napi::Persistent(fn)};
  env.SetInstanceData<Ctor>(ctor);
  return fn;
}

// The constructor takes the Engine through an External: JS cannot construct a NativeModel itself.
Napi::Object JsModel::New(Napi::Env env, std::unique_ptr<Engine> engine) {
  auto ext = Napi::External<Engine>::New(env, engine.release());
  return env.GetInstanceData<Ctor>()->fn.New({ext});
}

JsModel::JsModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsModel>(info), state_(std::make_shared<ModelState>()) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(info.Env(), "NativeModel is created by loadModel()").ThrowAsJavaScriptException();
    return;
  }
  state_->engine.reset(info[0].As<Napi::External<Engine>>().Data());
  const Engine& e = *state_->engine;
  configValue_ = e.config();
  config_ = Napi::Persistent(config_to_js(info.Env(), configValue_));
  blockSize_ = e.blockSize();
  numBlocks_ = e.numBlocks();
  kvF16_ = e.kvF16();
  kvPool_ = e.kvPool();
  numThreads_ = e.numThreads();
  weightBytes_ = static_cast<double>(e.weightBytes());
  backend_ = e.device();
  kernels_ = e.kernels();
}

namespace {

// Shared by every step kind: a disposed model throws; a bad batch rejects the Promise.
template <class Worker, class... Extra>
Napi::Value queue_step(const Napi::CallbackInfo& info, const std::shared_ptr<ModelState>& state, Napi::Value logitRows, Extra... extra) {
  if (state->disposed) throw make_error(info.Env(), "E_DISPOSED", "the model was disposed");
  auto* w = new Worker(info.Env(), state, extra...);
  Napi::Promise p = w->promise();
  Napi::Object batch = info.Length() > 0 && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(info.Env());
  if (w->prepare(batch, logitRows, info)) w->Queue();
  else delete w;
  return p;
}

}  // namespace

Napi::Value JsModel::Step(const Napi::CallbackInfo& info) {
  return queue_step<StepWorker>(info, state_, info.Env().Undefined());
}

// verify(batch, logitRows, draft?, out?)
Napi::Value JsModel::Verify(const Napi::CallbackInfo& info) {
  return queue_step<VerifyWorker>(info, state_, info.Length() > 1 ? info[1] : info.Env().Undefined());
}

Napi::Value JsModel::Logits(const Napi::CallbackInfo& info) {
  return queue_step<LogitsWorker>(info, state_, info.Length() > 1 ? info[1] : info.Env().Undefined());
}

Napi::Value JsModel::Argmax(const Napi::CallbackInfo& info) {
  return queue_step<ArgmaxWorker>(info, state_, info.Length() > 1 ? info[1] : info.Env().Undefined());
}

// draft(batch, k, numDraft?): k must be a positive integer (checked again by the Engine).
Napi::Value JsModel::Draft(const Napi::CallbackInfo& info) {
  const double k = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
  if (!(k >= 1 && k <= 1024) || k != static_cast<int>(k)) throw make_error(info.Env(), "E_BATCH", "draft(batch, k): k must be an integer in 1..1024");
  return queue_step<DraftWorker>(info, state_, info.Length() > 2 ? info[2] : info.Env().Undefined(), static_cast<int>(k));
}

// embed(batch, pooling, out?): pooling 'last' | 'mean'.
Napi::Value JsModel::Embed(const Napi::CallbackInfo& info) {
  const std::string pooling = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  if (pooling != "last" && pooling != "mean") throw make_error(info.Env(), "E_BATCH", "embed(batch, pooling): pooling must be 'last' or 'mean'");
  return queue_step<EmbedWorker>(info, state_, info.Env().Undefined(), pooling == "mean" ? Pooling::Mean : Pooling::Last);
}

// exportKv(blocks: Int32Array, numTokens, out?: Uint8Array): the payload's bytes are known here, so the
// result buffer exists before the worker writes into it.
Napi::Value JsModel::ExportKv(const Napi::CallbackInfo& info) {
  if (state_->disposed) throw make_error(info.Env(), "E_DISPOSED", "the model was disposed");
  const double tokens = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
  if (!(tokens >= 1 && tokens <= 2147483647.0) || tokens != static_cast<int>(tokens))
    throw make_error(info.Env(), "E_KV_BLOCKS", "exportKv(blocks, numTokens): numTokens must be a positive integer");
  auto* w = new KvExportWorker(info.Env(), state_, static_cast<int>(tokens));
  Napi::Promise p = w->promise();
  try {
    int64_t n = 0;
    typed_array_data(info[0], napi_int32_array, "blocks", &n, "exportKv(blocks, numTokens, out?): ");
    w->bind(info, kv_payload_bytes(kvPool_, static_cast<int>(n)));
  } catch (const EngineError& e) {
    w->reject(e.code(), e.what());
    delete w;
    return p;
  }
  w->Queue();
  return p;
}

// importKv(payload: Uint8Array, blocks: Int32Array) → the payload's token count.
Napi::Value JsModel::ImportKv(const Napi::CallbackInfo& info) {
  if (state_->disposed) throw make_error(info.Env(), "E_DISPOSED", "the model was disposed");
  auto* w = new KvImportWorker(info.Env(), state_);
  Napi::Promise p = w->promise();
  try {
    w->bind(info);
  } catch (const EngineError& e) {
    w->reject(e.code(), e.what());
    delete w;
    return p;
  }
  w->Queue();
  return p;
}

Napi::Value JsModel::KvFingerprint(const Napi::CallbackInfo& info) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(kvPool_.fingerprint));
  return Napi::String::New(info.Env(), hex);
}
Napi::Value JsModel::KvBlockBytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(kvPool_.blockBytes)); }

void JsModel::Dispose(const Napi::CallbackInfo&) {
  state_->disposed = true;
  state_->release_if_idle();
}

Napi::Value JsModel::Config(const Napi::CallbackInfo&) { return config_.Value(); }
Napi::Value JsModel::BlockSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), blockSize_); }
Napi::Value JsModel::NumBlocks(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), numBlocks_); }
Napi::Value JsModel::KvDtype(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), kvF16_ ? "f16" : "f32"); }
Napi::Value JsModel::Backend(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), backend_); }
Napi::Value JsModel::Kernels(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), kernels_); }
Napi::Value JsModel::WeightBytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), weightBytes_); }
Napi::Value JsModel::NumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), numThreads_); }

}  // namespace flotilla
