/**
 * A Hugging Face checkpoint (f32/f16/bf16 safetensors) → a GPTQ or AWQ checkpoint of the same weights,
 * quantized by round to nearest in the real layouts (writers/gptq-quantize.ts; not GPTQ's or AWQ's
 * algorithms). config.json keeps every original field and gains quantization_config; the tokenizer
 * files are copied. Used by tools/quantize-model.ts and the bundled model's perplexity test.
 */
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { UnsupportedModelError } from '../errors.js';
import { readModelSpec } from './read-model-spec.js';
import { quantizationConfig, type QuantScheme } from './writers/gptq-quantize.js';
import { writeQuantizedModel } from './writers/quantized-writer.js';
import { SpecWeights } from './writers/spec-weights.js';

const COPIED = [
  'tokenizer.json',
  'tokenizer_config.json',
  'generation_config.json',
  'special_tokens_map.json',
  'tokenizer.model',
];

export async function quantizeCheckpoint(
  inDir: string,
  outDir: string,
  scheme: QuantScheme,
  seed = 0,
): Promise<string> {
  const spec = await readModelSpec(inDir);
  if (spec.format !== 'safetensors')
    throw new UnsupportedModelError(
      spec.path,
      'quantizeCheckpoint reads Hugging Face checkpoints (config.json + safetensors)',
    );
  await mkdir(outDir, { recursive: true });
  await writeQuantizedModel(outDir, spec.config, new SpecWeights(spec), scheme, seed);
  const raw = JSON.parse(readFileSync(path.join(inDir, 'config.json'), 'utf8'));
  raw.quantization_config = quantizationConfig(scheme);
  raw.torch_dtype = 'float16';
  writeFileSync(path.join(outDir, 'config.json'), JSON.stringify(raw, null, 2));
  for (const f of COPIED) if (existsSync(path.join(inDir, f))) copyFileSync(path.join(inDir, f), path.join(outDir, f));
  return outDir;
}
