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
  static constexpr int kArrays = 22;  // every typed-array field parse_batch may read (19 always, 3 of logit bias)
  Napi::Reference<Napi::Value> refs[kArrays];
  int n = 0;
};

StepBatch parse_batch(Napi::Object batch, BatchRefs* refs);  // throws EngineError (E_BATCH)

// A typed array's data and length, checking its kind; throws E_BATCH naming `what` otherwise.
const void* typed_array_data(Napi::Value v, napi_typedarray_type type, const char* what, int64_t* length);

Napi::Object config_to_js(Napi::Env env, const ModelConfig& c);

}  // namespace flotilla
