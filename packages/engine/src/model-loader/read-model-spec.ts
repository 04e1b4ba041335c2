import { UnsupportedModelError } from '../errors.js';
import { detectFormat } from './detect-format.js';
import { readGgufSpec } from './gguf-reader.js';
import { readHfSpec } from './hf-reader.js';
import { readLlama2cSpec } from './llama2c-reader.js';
import type { ModelSpec, ReadModelSpecOptions } from './model-spec.js';

/**
 * Reads a model's headers, config and tokenizer — never its weights — from a llama2.c checkpoint,
 * a Hugging Face directory (or a file in one) or a GGUF file, detected automatically. Bad or
 * unsupported files reject with ModelFormatError / UnsupportedModelError naming the file.
 */
export async function readModelSpec(modelPath: string, options: ReadModelSpecOptions = {}): Promise<ModelSpec> {
  const { format, path } = detectFormat(modelPath);
  if (options.quantization && format !== 'safetensors')
    throw new UnsupportedModelError(
      path,
      `quantization '${options.quantization}' needs a Hugging Face checkpoint, not ${format}`,
    );
  switch (format) {
    case 'llama2c':
      return readLlama2cSpec(path, options.tokenizerPath);
    case 'gguf':
      return readGgufSpec(path);
    case 'safetensors':
      return readHfSpec(path, options.quantization);
  }
}
