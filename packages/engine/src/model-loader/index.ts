export type { ModelFormat, ModelSpec, ReadModelSpecOptions } from './model-spec.js';
export { readModelSpec } from './read-model-spec.js';
export { loadModel, type LoadModelOptions, type LoadedModel } from './load-model.js';
export { detectFormat, type DetectedFormat } from './detect-format.js';
export { expectedShapes, tensorBytes } from './manifest.js';
export { readGgufFile, type GgufFile, type GgufTensorInfo, type GgufValue } from './gguf-file.js';
export { readSafetensorsHeader, type SafetensorsEntry } from './safetensors-file.js';
export { makeRandomModel, MODEL_PRESETS, type RandomModelConfig, type RandomModelOptions } from './random-model.js';
