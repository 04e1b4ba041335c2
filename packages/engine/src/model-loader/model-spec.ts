import type { NativeModelConfig, NativeTensorSpec } from '../native/native-types.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

/** 'safetensors' is the Hugging Face directory layout (config.json + *.safetensors + tokenizer.json). */
export type ModelFormat = 'llama2c' | 'safetensors' | 'gguf';

/** Everything known about a model before its weights are touched: the addon's manifest plus the tokenizer. */
export interface ModelSpec {
  format: ModelFormat;
  /** The path the spec was read from (checkpoint file, GGUF file or HF directory), absolute. */
  path: string;
  config: NativeModelConfig;
  /** Absolute paths the tensors point into. */
  files: string[];
  tensors: NativeTensorSpec[];
  tokenizer: Tokenizer;
  bosId: number;
  eosId: number;
  /** Generation stops on any of these (EOS, extra EOS ids of generation_config, BOS for llama2.c checkpoints). */
  stopTokenIds: number[];
  /** Jinja chat template from tokenizer_config.json or GGUF tokenizer.chat_template, when the model has one. */
  chatTemplate?: string;
  modelName: string;
}

export interface ReadModelSpecOptions {
  /**
   * Tokenizer file for a llama2.c checkpoint. Default: searched beside the checkpoint — tokenizer.bin,
   * then tok{vocabSize}.bin, then any other tok*.bin whose vocabulary size matches.
   */
  tokenizerPath?: string;
  /**
   * A pre-quantized Hugging Face checkpoint's method, as vLLM's `quantization` names it: the
   * checkpoint's quantization_config must say the same. Default: whatever config.json says.
   */
  quantization?: 'gptq' | 'awq';
}
