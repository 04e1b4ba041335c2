/**
 * readModelSpec() + the addon's loadModel(): the one call that turns a path into a runnable model.
 * The addon is imported lazily so that reading specs and tokenizers works where it is not built.
 */
import { asKvCacheDtypeError, checkKvCacheDtype } from '../kv-cache-dtype.js';
import type { NativeLoadOptions, NativeModel } from '../native/native-types.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { ModelSpec, ReadModelSpecOptions } from './model-spec.js';
import { readModelSpec } from './read-model-spec.js';

export interface LoadModelOptions
  extends ReadModelSpecOptions,
    Omit<NativeLoadOptions, 'config' | 'files' | 'tensors'> {
  /** Called by the addon as weights are converted: (bytes or tensors done, total). Default: none. */
  onProgress?: (done: number, total: number) => void;
}

export interface LoadedModel extends AsyncDisposable {
  spec: ModelSpec;
  model: NativeModel;
  tokenizer: Tokenizer;
  /** Frees the native weights and KV pool; safe to call twice. */
  dispose(): void;
}

export async function loadModel(modelPath: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const { tokenizerPath, quantization, onProgress, ...native } = options;
  if (native.kvDtype !== undefined) checkKvCacheDtype(native.kvDtype);
  const spec = await readModelSpec(modelPath, {
    ...(tokenizerPath !== undefined ? { tokenizerPath } : {}),
    ...(quantization !== undefined ? { quantization } : {}),
  });
  const { loadNative } = await import('../native/load-native.js');
  const model = await loadNative()
    .loadModel({ ...native, config: spec.config, files: spec.files, tensors: spec.tensors }, onProgress)
    .catch((err: unknown) => {
      throw asKvCacheDtypeError(err, native.kvDtype);
    });
  let disposed = false;
  const dispose = () => {
    if (disposed) return;
    disposed = true;
    model.dispose();
  };
  return { spec, model, tokenizer: spec.tokenizer, dispose, [Symbol.asyncDispose]: async () => dispose() };
}
