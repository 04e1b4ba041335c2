// JS values <-> core structs: NativeLoadOptions -> LoadSpec, NativeStepBatch -> StepBatch (borrowing
// the typed arrays), EngineError -> Error with `.code`.
#pragma once
#include <napi.h>

#include <string>

#include "../core/load-spec.h"
#include "../core/step-batch.h"

namespace flotilla {

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message);

LoadSpec parse_load_spec(Napi::Object options);  // throws EngineError

// Keeps the batch's typed arrays alive until the step that reads them has finished.
struct BatchRefs {
  static constexpr int kArrays = 25;  // every typed-array field parse_batch may read (19 always, 3 of logit bias, 2 of token masks, 1 of LoRA slots)
  Napi::Reference<Napi::Value> refs[kArrays];
  int n = 0;
};

StepBatch parse_batch(Napi::Object batch, BatchRefs* refs);  // throws EngineError (E_BATCH)

// loadLora()'s spec { files, tensors, scale } (lora-worker.cpp); throws EngineError.
struct LoraSpec;
LoraSpec parse_lora_spec(Napi::Object o);

// A typed array's data and length, checking its kind; throws E_BATCH naming `where` and `what` otherwise.
const void* typed_array_data(Napi::Value v, napi_typedarray_type type, const char* what, int64_t* length,
                             const char* where = "step batch: ");

// A typed array of the caller's that a call writes its results into (or reads, for draft
// distributions), kept alive until the call has settled.
template <class T>
struct CallerArray {
  Napi::Reference<Napi::Value> ref;
  T* data = nullptr;
  int64_t len = 0;

  // o[key], which must be a typed array of `type`; throws E_BATCH naming `where` + key otherwise.
  void bind(Napi::Object o, const char* key, napi_typedarray_type type, const char* where) {
    Napi::Value v = o.Get(key);
    data = static_cast<T*>(const_cast<void*>(typed_array_data(v, type, key, &len, where)));
    ref = Napi::Persistent(v);
  }

  // Its first n entries: the array itself when that is all of it, else a view on the same memory.
  Napi::Value view(Napi::Env env, size_t n) const {
    Napi::TypedArray a = ref.Value().As<Napi::TypedArray>();
    if (a.ElementLength() == n) return a;
    return Napi::TypedArrayOf<T>::New(env, n, a.ArrayBuffer(), a.ByteOffset());
  }
};

Napi::Object config_to_js(Napi::Env env, const ModelConfig& c);

}  // namespace flotilla
