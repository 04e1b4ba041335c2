#include "js-convert.h"

#include <cmath>

#include "../core/error.h"
#include "../core/lora.h"

namespace flotilla {

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

namespace {

double number(Napi::Object o, const char* key, const char* where, bool required, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    if (required) fail("E_SHAPE", std::string(where) + key + " is required");
    return fallback;
  }
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue()))
    fail("E_SHAPE", std::string(where) + key + " must be a finite number");
  return v.As<Napi::Number>().DoubleValue();
}

int integer(Napi::Object o, const char* key, const char* where, bool required, int fallback = 0) {
  const double d = number(o, key, where, required, fallback);
  if (d != std::floor(d) || std::fabs(d) > 2147483647.0) fail("E_SHAPE", std::string(where) + key + " must be an integer");
  return static_cast<int>(d);
}

std::string string(Napi::Object o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsString()) fail("E_SHAPE", std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

ModelConfig parse_config(Napi::Object o) {
  const char* w = "config.";
  ModelConfig c;
  c.dim = integer(o, "dim", w, true);
  c.hiddenDim = integer(o, "hiddenDim", w, true);
  c.nLayers = integer(o, "nLayers", w, true);
  c.nHeads = integer(o, "nHeads", w, true);
  c.nKvHeads = integer(o, "nKvHeads", w, true);
  c.vocabSize = integer(o, "vocabSize", w, true);
  c.maxSeqLen = integer(o, "maxSeqLen", w, true);
  c.ropeTheta = static_cast<float>(number(o, "ropeTheta", w, false, 10000.0));
  c.normEps = static_cast<float>(number(o, "normEps", w, false, 1e-5));
  const std::string layout = string(o, "ropeLayout", "interleaved");
  if (layout != "interleaved" && layout != "half") fail("E_SHAPE", "config.ropeLayout must be 'interleaved' or 'half'");
  c.ropeLayout = layout == "half" ? RopeLayout::Half : RopeLayout::Interleaved;
  Napi::Value tied = o.Get("tiedEmbeddings");
  c.tiedEmbeddings = tied.IsUndefined() ? true : tied.ToBoolean().Value();
  return c;
}

std::vector<int64_t> parse_shape(Napi::Value shape, const std::string& where) {
  if (!shape.IsArray()) fail("E_SHAPE", where + "shape must be an array");
  Napi::Array a = shape.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value d = a.Get(i);
    if (!d.IsNumber() || d.As<Napi::Number>().DoubleValue() < 0) fail("E_SHAPE", where + "shape entries must be non-negative numbers");
    out.push_back(static_cast<int64_t>(d.As<Napi::Number>().DoubleValue()));
  }
  return out;
}

// quant.{qweight,qzeros,scales,gIdx}: { name, file, offset, dtype ('i32' or a float type), shape }; absent: file -1.
PackedPart parse_part(Napi::Object quant, const char* key, const std::string& where) {
  PackedPart p;
  Napi::Value v = quant.Get(key);
  if (v.IsUndefined() || v.IsNull()) return p;
  if (!v.IsObject()) fail("E_SHAPE", where + "quant." + key + " must be an object");
  Napi::Object o = v.As<Napi::Object>();
  p.name = string(o, "name", key);
  const std::string w = where + "quant." + key + ".";
  p.file = integer(o, "file", w.c_str(), true);
  const double off = number(o, "offset", w.c_str(), true, 0);
  if (off < 0 || off != std::floor(off)) fail("E_RANGE", w + "offset must be a non-negative integer");
  p.offset = static_cast<uint64_t>(off);
  const std::string dtype = string(o, "dtype", "");
  p.int32 = dtype == "i32";
  if (!p.int32 && !parse_dtype(dtype, &p.dtype)) fail("E_DTYPE", "tensor '" + p.name + "' has unsupported dtype '" + dtype + "'");
  p.shape = parse_shape(o.Get("shape"), w);
  return p;
}

PackedQuant parse_packed(Napi::Object o, const std::string& scheme, const std::string& where) {
  PackedQuant q;
  q.scheme = scheme == "awq" ? PackedQuant::Scheme::Awq : PackedQuant::Scheme::Gptq;
  Napi::Value v = o.Get("quant");
  if (!v.IsObject()) fail("E_SHAPE", where + "a " + scheme + " tensor needs quant: { bits, groupSize, qweight, qzeros, scales }");
  Napi::Object qo = v.As<Napi::Object>();
  q.bits = integer(qo, "bits", (where + "quant.").c_str(), true);
  q.groupSize = integer(qo, "groupSize", (where + "quant.").c_str(), true);
  q.zeroOffset = integer(qo, "zeroOffset", (where + "quant.").c_str(), false, q.scheme == PackedQuant::Scheme::Awq ? 0 : 1);
  q.qweight = parse_part(qo, "qweight", where);
  q.qzeros = parse_part(qo, "qzeros", where);
  q.scales = parse_part(qo, "scales", where);
  q.gIdx = parse_part(qo, "gIdx", where);
  return q;
}

TensorSpec parse_tensor(Napi::Value v, const std::vector<std::string>& files, uint32_t index) {
  if (!v.IsObject()) fail("E_SHAPE", "tensors[" + std::to_string(index) + "] must be an object");
  Napi::Object o = v.As<Napi::Object>();
  TensorSpec t;
  t.name = string(o, "name", "");
  const std::string where = "tensor '" + t.name + "': ";
  t.file = integer(o, "file", where.c_str(), true);
  const double off = number(o, "offset", where.c_str(), true, 0);
  if (off < 0 || off != std::floor(off)) fail("E_RANGE", where + "offset must be a non-negative integer");
  t.offset = static_cast<uint64_t>(off);
  const std::string dtype = string(o, "dtype", "");
  if (dtype == "gptq" || dtype == "awq") {  // a packed linear layer (weights-gptq.h)
    t.packed = parse_packed(o, dtype, where);
    t.dtype = DType::Q4_Z;  // nominal: the repack decides Q4_0, Q4_Z or Q8_0
  } else if (!parse_dtype(dtype, &t.dtype)) {
    const std::string file = t.file >= 0 && t.file < int(files.size()) ? files[t.file] + ": " : "";
    fail("E_DTYPE", file + "tensor '" + t.name + "' has unsupported dtype '" + dtype + "'");
  }
  t.shape = parse_shape(o.Get("shape"), where);
  return t;
}

}  // namespace

LoadSpec parse_load_spec(Napi::Object o) {
  LoadSpec s;
  Napi::Value config = o.Get("config");
  if (!config.IsObject()) fail("E_SHAPE", "options.config is required");
  s.config = parse_config(config.As<Napi::Object>());
  Napi::Value files = o.Get("files"), tensors = o.Get("tensors");
  if (!files.IsArray() || !tensors.IsArray()) fail("E_SHAPE", "options.files and options.tensors must be arrays");
  Napi::Array fa = files.As<Napi::Array>(), ta = tensors.As<Napi::Array>();
  for (uint32_t i = 0; i < fa.Length(); i++) {
    if (!fa.Get(i).IsString()) fail("E_FILE", "options.files must hold paths");
    s.files.push_back(fa.Get(i).As<Napi::String>().Utf8Value());
  }
  for (uint32_t i = 0; i < ta.Length(); i++) s.tensors.push_back(parse_tensor(ta.Get(i), s.files, i));
  const std::string wf = string(o, "weightFormat", "auto");
  if (!parse_weight_format(wf, &s.weightFormat)) fail("E_DTYPE", "weightFormat '" + wf + "' is not one of auto, f32, f16, bf16, int8, int4");
  s.blockSize = integer(o, "blockSize", "options.", false, 16);
  const double kvBytes = number(o, "kvCacheBytes", "options.", false, double(256ull << 20));
  if (kvBytes <= 0) fail("E_SHAPE", "options.kvCacheBytes must be positive");
  s.kvCacheBytes = static_cast<uint64_t>(kvBytes);
  s.kvCacheBytesGiven = !o.Get("kvCacheBytes").IsUndefined() && !o.Get("kvCacheBytes").IsNull();
  s.gpuMemoryUtilization = number(o, "gpuMemoryUtilization", "options.", false, 0.9);
  s.numBlocks = integer(o, "numBlocks", "options.", false, 0);
  const std::string kv = string(o, "kvDtype", "auto");
  if (kv != "auto" && !parse_kv_type(kv, &s.kvType))
    fail("E_DTYPE", "kvDtype (kv_cache_dtype) must be 'auto', 'f32', 'f16', 'int8' or 'fp8', got '" + kv + "'");
  s.kvAuto = kv == "auto";
  const std::string act = string(o, "activations", "int8");
  if (act != "int8" && act != "f32") fail("E_DTYPE", "activations must be 'int8' or 'f32', got '" + act + "'");
  s.f32Activations = act == "f32";
  s.maxBatchTokens = integer(o, "maxBatchTokens", "options.", false, 2048);
  s.maxBatchSeqs = integer(o, "maxBatchSeqs", "options.", false, 256);
  s.numThreads = integer(o, "numThreads", "options.", false, 0);
  s.maxLoras = integer(o, "maxLoras", "options.", false, 0);
  s.maxLoraRank = integer(o, "maxLoraRank", "options.", false, s.maxLoras > 0 ? 16 : 0);
  const std::string device = string(o, "device", "auto");
  if (device != "auto" && device != "cpu" && device != "cuda") fail("E_DEVICE", "device must be 'auto', 'cpu' or 'cuda'");
  s.device = device == "cuda" ? LoadSpec::Device::Cuda : device == "cpu" ? LoadSpec::Device::Cpu : LoadSpec::Device::Auto;
  return s;
}

LoraSpec parse_lora_spec(Napi::Object o) {
  LoraSpec s;
  Napi::Value files = o.Get("files"), tensors = o.Get("tensors");
  if (!files.IsArray() || !tensors.IsArray()) fail("E_SHAPE", "loadLora: spec.files and spec.tensors must be arrays");
  Napi::Array fa = files.As<Napi::Array>(), ta = tensors.As<Napi::Array>();
  for (uint32_t i = 0; i < fa.Length(); i++) {
    if (!fa.Get(i).IsString()) fail("E_FILE", "loadLora: spec.files must hold paths");
    s.files.push_back(fa.Get(i).As<Napi::String>().Utf8Value());
  }
  for (uint32_t i = 0; i < ta.Length(); i++) s.tensors.push_back(parse_tensor(ta.Get(i), s.files, i));
  s.scale = static_cast<float>(number(o, "scale", "spec.", true, 1.0));
  if (!std::isfinite(s.scale)) fail("E_SHAPE", "loadLora: spec.scale must be finite");
  s.halfToInterleaved = o.Get("halfToInterleaved").ToBoolean();
  return s;
}

const void* typed_array_data(Napi::Value v, napi_typedarray_type type, const char* what, int64_t* length,
                             const char* where) {
  static const char* kNames[] = {"Int8Array",  "Uint8Array",   "Uint8ClampedArray", "Int16Array",    "Uint16Array",   "Int32Array",
                                 "Uint32Array", "Float32Array", "Float64Array",      "BigInt64Array", "BigUint64Array"};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    fail("E_BATCH", std::string(where) + what + " must be a " + (type <= 10 ? kNames[type] : "typed array"));
  Napi::TypedArray a = v.As<Napi::TypedArray>();
  *length = static_cast<int64_t>(a.ElementLength());
  return static_cast<const uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
}

namespace {

template <class T>
const T* field(Napi::Object b, const char* key, napi_typedarray_type type, int64_t* len, BatchRefs* refs) {
  Napi::Value v = b.Get(key);
  const void* p = typed_array_data(v, type, key, len);
  if (refs->n >= BatchRefs::kArrays) fail("E_BATCH", "step batch: more typed arrays than BatchRefs holds");  // a build-time slip, not input
  refs->refs[refs->n++] = Napi::Persistent(v);
  return static_cast<const T*>(p);
}

// An optional field: null when the key is absent (or undefined).
template <class T>
const T* optional_field(Napi::Object b, const char* key, napi_typedarray_type type, int64_t* len, BatchRefs* refs) {
  if (!b.Has(key) || b.Get(key).IsUndefined()) return nullptr;
  return field<T>(b, key, type, len, refs);
}

}  // namespace

StepBatch parse_batch(Napi::Object o, BatchRefs* refs) {
  StepBatch b;
  const char* w = "step batch: ";
  auto count = [&](const char* key) {
    Napi::Value v = o.Get(key);
    if (!v.IsNumber()) fail("E_BATCH", std::string(w) + key + " must be a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (d != std::floor(d) || d < 0 || d > 2147483647.0) fail("E_BATCH", std::string(w) + key + " must be a non-negative integer");
    return static_cast<int>(d);
  };
  b.numSeqs = count("numSeqs");
  b.numTokens = count("numTokens");
  b.maxBlocksPerSeq = count("maxBlocksPerSeq");
  int64_t l[9];
  b.tokenIds = field<int32_t>(o, "tokenIds", napi_int32_array, &b.lenTokenIds, refs);
  b.positions = field<int32_t>(o, "positions", napi_int32_array, &b.lenPositions, refs);
  b.slotMapping = field<int32_t>(o, "slotMapping", napi_int32_array, &b.lenSlotMapping, refs);
  b.queryStartLoc = field<int32_t>(o, "queryStartLoc", napi_int32_array, &b.lenQueryStartLoc, refs);
  b.contextLens = field<int32_t>(o, "contextLens", napi_int32_array, &b.lenContextLens, refs);
  b.blockTables = field<int32_t>(o, "blockTables", napi_int32_array, &b.lenBlockTables, refs);
  b.sampleMask = field<uint8_t>(o, "sampleMask", napi_uint8_array, &b.lenSampleMask, refs);
  b.temperature = field<float>(o, "temperature", napi_float32_array, &l[0], refs);
  b.topK = field<int32_t>(o, "topK", napi_int32_array, &l[1], refs);
  b.topP = field<float>(o, "topP", napi_float32_array, &l[2], refs);
  b.minP = field<float>(o, "minP", napi_float32_array, &l[3], refs);
  b.repetitionPenalty = field<float>(o, "repetitionPenalty", napi_float32_array, &l[4], refs);
  b.presencePenalty = field<float>(o, "presencePenalty", napi_float32_array, &l[5], refs);
  b.frequencyPenalty = field<float>(o, "frequencyPenalty", napi_float32_array, &l[6], refs);
  b.seeds = field<uint32_t>(o, "seeds", napi_uint32_array, &l[7], refs);
  b.numLogprobs = field<int32_t>(o, "numLogprobs", napi_int32_array, &l[8], refs);
  b.penaltyTokens = field<int32_t>(o, "penaltyTokens", napi_int32_array, &b.lenPenaltyTokens, refs);
  b.penaltyOffsets = field<int32_t>(o, "penaltyOffsets", napi_int32_array, &b.lenPenaltyOffsets, refs);
  int64_t promptLens;
  b.penaltyPromptLens = field<int32_t>(o, "penaltyPromptLens", napi_int32_array, &promptLens, refs);
  b.biasOffsets = optional_field<int32_t>(o, "biasOffsets", napi_int32_array, &b.lenBiasOffsets, refs);
  if (b.biasOffsets) {
    b.biasTokens = field<int32_t>(o, "biasTokens", napi_int32_array, &b.lenBiasTokens, refs);
    b.biasValues = field<float>(o, "biasValues", napi_float32_array, &b.lenBiasValues, refs);
  }
  b.tokenMaskOffsets = optional_field<int32_t>(o, "tokenMaskOffsets", napi_int32_array, &b.lenTokenMaskOffsets, refs);
  if (b.tokenMaskOffsets) b.tokenMask = field<uint32_t>(o, "tokenMask", napi_uint32_array, &b.lenTokenMask, refs);
  b.loraSlots = optional_field<int32_t>(o, "loraSlots", napi_int32_array, &b.lenLoraSlots, refs);
  b.lenPerSeq = promptLens;
  for (int64_t n : l) b.lenPerSeq = std::min(b.lenPerSeq, n);
  return b;
}

Napi::Object config_to_js(Napi::Env env, const ModelConfig& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("dim", c.dim);
  o.Set("hiddenDim", c.hiddenDim);
  o.Set("nLayers", c.nLayers);
  o.Set("nHeads", c.nHeads);
  o.Set("nKvHeads", c.nKvHeads);
  o.Set("vocabSize", c.vocabSize);
  o.Set("maxSeqLen", c.maxSeqLen);
  o.Set("ropeTheta", c.ropeTheta);
  o.Set("ropeLayout", c.ropeLayout == RopeLayout::Half ? "half" : "interleaved");
  o.Set("normEps", c.normEps);
  o.Set("tiedEmbeddings", c.tiedEmbeddings);
  return o;
}

}  // namespace flotilla
