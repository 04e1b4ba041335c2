/**
 * Hugging Face model directory → ModelSpec: config.json, model.safetensors or shards listed in
 * model.safetensors.index.json, tokenizer.json (+ tokenizer_config.json, generation_config.json).
 * HF checkpoints rotate (i, i + headDim/2) pairs, so ropeLayout is 'half'.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { NativeDType, NativeTensorSpec } from '../native/native-types.js';
import { ModelFormatError, UnsupportedModelError } from '../errors.js';
import { HfTokenizer } from '../tokenizer/hf-tokenizer.js';
import { readHfConfig, readJson } from './hf-config.js';
import { type LocatedEntry, isPackedPart, packedTensor, type Quantization, readQuantScheme } from './hf-quant.js';
import { checkManifest, expectedShapes } from './manifest.js';
import type { ModelSpec } from './model-spec.js';
import { readSafetensorsHeader } from './safetensors-file.js';

const LAYER_NAMES: Record<string, string> = {
  input_layernorm: 'attention_norm',
  'self_attn.q_proj': 'wq',
  'self_attn.k_proj': 'wk',
  'self_attn.v_proj': 'wv',
  'self_attn.o_proj': 'wo',
  post_attention_layernorm: 'ffn_norm',
  'mlp.gate_proj': 'w1',
  'mlp.down_proj': 'w2',
  'mlp.up_proj': 'w3',
};
const DTYPES: Record<string, NativeDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

export async function readHfSpec(dir: string, quantization?: Quantization): Promise<ModelSpec> {
  const hf = readHfConfig(path.join(dir, 'config.json'));
  const scheme = readQuantScheme(path.join(dir, 'config.json'), hf.raw, quantization);
  const files = safetensorsFiles(dir);
  const tensors: NativeTensorSpec[] = [];
  const parts = new Map<string, LocatedEntry>();
  files.forEach((file, index) => {
    for (const e of readSafetensorsHeader(file)) {
      if (scheme && isPackedPart(e.name)) {
        parts.set(e.name, { entry: e, file: index });
        continue;
      }
      if (e.name.endsWith('.bias')) {
        const what = e.name.includes('self_attn') ? 'attention biases' : 'biases';
        throw new UnsupportedModelError(file, `${what} (${e.name}): the native engine has no bias terms`);
      }
      const name = canonicalName(e.name);
      if (!name || (name === 'output' && hf.config.tiedEmbeddings)) continue;
      const dtype = DTYPES[e.dtype];
      if (!dtype)
        throw new UnsupportedModelError(file, `tensor type ${e.dtype} of ${e.name} (F32, F16, BF16 are read)`);
      tensors.push({ name, file: index, offset: e.offset, dtype, shape: e.shape });
    }
  });
  if (scheme) {
    const present = new Set(tensors.map((t) => t.name));
    for (const [name, shape] of expectedShapes(hf.config)) {
      if (present.has(name) || shape.length !== 2 || name === 'tok_embeddings') continue;
      tensors.push(packedTensor(files, parts, scheme, name, hfName(name), shape as [number, number]));
    }
  }
  checkManifest(hf.config, files, tensors, hfName);
  const tok = readTokenizer(dir, hf.bosId, hf.eosIds[0]);
  if (tok.tokenizer.vocabSize > hf.config.vocabSize) {
    throw new ModelFormatError(
      path.join(dir, 'tokenizer.json'),
      `vocabulary size mismatch: tokenizer has ${tok.tokenizer.vocabSize} tokens, the model ${hf.config.vocabSize}`,
    );
  }
  const eosId = tok.tokenizer.eosId;
  return {
    format: 'safetensors',
    path: dir,
    config: hf.config,
    files,
    tensors,
    tokenizer: tok.tokenizer,
    bosId: tok.tokenizer.bosId,
    eosId,
    stopTokenIds: [...new Set([eosId, ...hf.eosIds, ...generationEos(dir)].filter((id) => id >= 0))],
    ...(tok.chatTemplate ? { chatTemplate: tok.chatTemplate } : {}),
    modelName:
      typeof hf.raw._name_or_path === 'string' && hf.raw._name_or_path ? hf.raw._name_or_path : path.basename(dir),
  };
}

/** model.safetensors, else the shards named by model.safetensors.index.json, else every *.safetensors. */
export function safetensorsFiles(dir: string): string[] {
  const single = path.join(dir, 'model.safetensors');
  if (existsSync(single)) return [single];
  const index = path.join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    const map = readJson(index, 'safetensors index').weight_map as Record<string, string> | undefined;
    if (!map || typeof map !== 'object') throw new ModelFormatError(index, 'no weight_map');
    const shards = [...new Set(Object.values(map))].sort().map((f) => path.join(dir, f));
    const missing = shards.find((f) => !existsSync(f));
    if (missing) throw new ModelFormatError(missing, 'missing shard listed in model.safetensors.index.json');
    return shards;
  }
  const all = readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors'))
    .sort();
  if (all.length === 0) throw new ModelFormatError(dir, 'missing weights: no model.safetensors or *.safetensors');
  return all.map((f) => path.join(dir, f));
}

export function canonicalName(hf: string): string | undefined {
  if (hf === 'model.embed_tokens.weight') return 'tok_embeddings';
  if (hf === 'model.norm.weight') return 'norm';
  if (hf === 'lm_head.weight') return 'output';
  const m = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(hf);
  const short = m ? LAYER_NAMES[m[2]!] : undefined;
  return short ? `layers.${m![1]}.${short}` : undefined;
}

export function hfName(canonical: string): string {
  if (canonical === 'tok_embeddings') return 'model.embed_tokens.weight';
  if (canonical === 'norm') return 'model.norm.weight';
  if (canonical === 'output') return 'lm_head.weight';
  const [, layer, short] = canonical.split('.');
  return `model.layers.${layer}.${Object.entries(LAYER_NAMES).find(([, c]) => c === short)?.[0]}.weight`;
}

function readTokenizer(dir: string, bosId?: number, eosId?: number): { tokenizer: HfTokenizer; chatTemplate?: string } {
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  const tokenizerConfig = existsSync(cfgFile) ? readJson(cfgFile, 'tokenizer_config.json') : {};
  const tokenizer = HfTokenizer.fromFile(path.join(dir, 'tokenizer.json'), {
    tokenizerConfig,
    ...(bosId !== undefined ? { bosId } : {}),
    ...(eosId !== undefined ? { eosId } : {}),
  });
  const chatTemplate =
    pickTemplate(tokenizerConfig.chat_template) ?? readOptional(path.join(dir, 'chat_template.jinja'));
  return { tokenizer, ...(chatTemplate ? { chatTemplate } : {}) };
}

/** chat_template is a string, or a list of { name, template } where 'default' is the chat one. */
function pickTemplate(t: unknown): string | undefined {
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) return (t.find((x) => x?.name === 'default') ?? t[0])?.template;
  return undefined;
}

function readOptional(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

function generationEos(dir: string): number[] {
  const file = path.join(dir, 'generation_config.json');
  if (!existsSync(file)) return [];
  const eos = readJson(file, 'generation_config.json').eos_token_id;
  return Array.isArray(eos) ? eos.filter((x) => typeof x === 'number') : typeof eos === 'number' ? [eos] : [];
}
