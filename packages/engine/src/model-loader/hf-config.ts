/**
 * Hugging Face config.json (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) → NativeModelConfig.
 * Defaults are the transformers config classes' own. Anything the addon cannot run exactly (RoPE scaling,
 * a head_dim other than hidden/heads, biases) is rejected with UnsupportedModelError.
 */
import { readFileSync } from 'node:fs';
import type { NativeModelConfig } from '../native/native-types.js';
import { ModelFormatError, UnsupportedModelError } from '../errors.js';

export const SUPPORTED_ARCHITECTURES = ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM'] as const;

export interface HfConfig {
  config: NativeModelConfig;
  architecture: string;
  bosId?: number;
  /** eos_token_id of config.json: one id or several. */
  eosIds: number[];
  raw: Record<string, unknown>;
}

export function readJson(file: string, what: string): Record<string, any> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new ModelFormatError(file, `missing ${what}`);
  }
  try {
    const v = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v;
  } catch (err) {
    throw new ModelFormatError(file, `${what} is not valid JSON: ${(err as Error).message}`);
  }
}

export function readHfConfig(file: string): HfConfig {
  const raw = readJson(file, 'config.json');
  const architecture = String((raw.architectures as unknown[] | undefined)?.[0] ?? raw.model_type ?? 'unknown');
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(architecture)) {
    throw new UnsupportedModelError(
      file,
      `architecture ${architecture} (${SUPPORTED_ARCHITECTURES.join(', ')} are read)`,
    );
  }
  const int = (key: string, fallback?: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number') throw new ModelFormatError(file, `missing or bad ${key}`);
    return v;
  };
  checkSupported(file, raw);
  const dim = int('hidden_size');
  const nHeads = int('num_attention_heads');
  if (raw.head_dim != null && raw.head_dim !== dim / nHeads)
    throw new UnsupportedModelError(file, `head_dim ${raw.head_dim} ≠ hidden_size / num_attention_heads`);
  let maxSeqLen = int('max_position_embeddings', 2048);
  // Mistral's sliding window: the addon attends to the whole context, which is exact only up to the window
  const window = raw.sliding_window;
  if (typeof window === 'number' && raw.use_sliding_window !== false && window < maxSeqLen) maxSeqLen = window;
  const config: NativeModelConfig = {
    dim,
    hiddenDim: int('intermediate_size'),
    nLayers: int('num_hidden_layers'),
    nHeads,
    nKvHeads: int('num_key_value_heads', nHeads),
    vocabSize: int('vocab_size'),
    maxSeqLen,
    ropeTheta: int('rope_theta', 10000),
    ropeLayout: 'half',
    normEps: int('rms_norm_eps', 1e-6),
    tiedEmbeddings: raw.tie_word_embeddings === true,
  };
  const eos = raw.eos_token_id;
  return {
    config,
    architecture,
    raw,
    ...(typeof raw.bos_token_id === 'number' ? { bosId: raw.bos_token_id } : {}),
    eosIds: Array.isArray(eos)
      ? eos.filter((x): x is number => typeof x === 'number')
      : typeof eos === 'number'
        ? [eos]
        : [],
  };
}

function checkSupported(file: string, raw: Record<string, any>): void {
  if (raw.hidden_act !== undefined && raw.hidden_act !== 'silu')
    throw new UnsupportedModelError(file, `activation ${raw.hidden_act} (SwiGLU with silu only)`);
  if (raw.rope_scaling != null)
    throw new UnsupportedModelError(file, `RoPE scaling ${JSON.stringify(raw.rope_scaling)}`);
  if (raw.attention_bias === true) throw new UnsupportedModelError(file, 'attention biases');
  if (raw.mlp_bias === true) throw new UnsupportedModelError(file, 'MLP biases');
  if (raw.partial_rotary_factor != null && raw.partial_rotary_factor !== 1)
    throw new UnsupportedModelError(file, `partial RoPE (factor ${raw.partial_rotary_factor})`);
}
