/**
 * A PEFT LoRA directory (adapter_config.json + adapter_model.safetensors) → the addon's loadLora() spec,
 * checked against the base model: every tensor is lora_A (r, in) or lora_B (out, r) of q, k, v, o,
 * gate, up or down in a layer the base has, with the base weight's dimensions. Only headers are read.
 * Tensor names: [base_model.model.]model.layers.{i}.{self_attn|mlp}.{q|k|v|o|gate|up|down}_proj.lora_{A|B}[.default].weight.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expectedShapes } from '../model-loader/manifest.js';
import { readSafetensorsHeader } from '../model-loader/safetensors-file.js';
import type { NativeDType, NativeLoraSpec, NativeModelConfig, NativeTensorSpec } from '../native/native-types.js';
import { AdapterMismatchError } from './errors.js';

/** PEFT module name → the engine's canonical weight name. */
export const PEFT_MODULES: Record<string, string> = {
  q_proj: 'wq',
  k_proj: 'wk',
  v_proj: 'wv',
  o_proj: 'wo',
  gate_proj: 'w1',
  up_proj: 'w3',
  down_proj: 'w2',
};

const NAME =
  /^(?:base_model\.model\.)?model\.layers\.(\d+)\.(?:self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.lora_([AB])(?:\.default)?\.weight$/;
const DTYPES: Record<string, NativeDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

export interface PeftAdapter {
  /** The adapter directory, absolute. */
  path: string;
  /** The largest rank of its modules (adapter_config r). */
  rank: number;
  /** lora_alpha / r (or / sqrt(r) with use_rslora): what B is multiplied by. */
  scale: number;
  /** PEFT module names present, sorted. */
  targetModules: string[];
  /** adapter_config.json base_model_name_or_path, when given. */
  baseModel?: string;
  /** What NativeModel.loadLora takes. */
  native: NativeLoraSpec;
}

export function readPeftAdapter(dir: string, base: NativeModelConfig, maxRank: number): PeftAdapter {
  const abs = path.resolve(dir);
  const cfgFile = path.join(abs, 'adapter_config.json');
  const file = path.join(abs, 'adapter_model.safetensors');
  if (!existsSync(cfgFile)) throw new AdapterMismatchError(abs, 'not a PEFT adapter: adapter_config.json is missing');
  if (!existsSync(file)) throw new AdapterMismatchError(abs, 'adapter_model.safetensors is missing');
  const cfg = readConfig(cfgFile);
  const rank = cfg.r;
  if (rank > maxRank)
    throw new AdapterMismatchError(cfgFile, `rank ${rank} exceeds this engine's maxLoraRank ${maxRank}`);
  const scale = cfg.use_rslora ? cfg.lora_alpha / Math.sqrt(rank) : cfg.lora_alpha / rank;
  const shapes = expectedShapes(base);
  const tensors: NativeTensorSpec[] = [];
  const modules = new Set<string>();
  for (const e of readSafetensorsHeader(file)) {
    const m = NAME.exec(e.name);
    if (!m)
      throw new AdapterMismatchError(
        file,
        `unsupported tensor ${e.name} (only lora_A/lora_B of q, k, v, o, gate, up, down)`,
        e.name,
      );
    const layer = Number(m[1]);
    const canonical = `layers.${layer}.${PEFT_MODULES[m[2]!]}`;
    const baseShape = shapes.get(canonical);
    if (!baseShape)
      throw new AdapterMismatchError(file, `tensor ${e.name}: the base model has ${base.nLayers} layers`, e.name);
    const dtype = DTYPES[e.dtype];
    if (!dtype)
      throw new AdapterMismatchError(file, `tensor ${e.name} is ${e.dtype} (F32, F16, BF16 are read)`, e.name);
    const isA = m[3] === 'A';
    const [out, inDim] = baseShape as [number, number];
    const want = isA ? [rank, inDim] : [out, rank];
    if (e.shape.length !== 2 || e.shape[0] !== want[0] || e.shape[1] !== want[1]) {
      throw new AdapterMismatchError(
        file,
        `tensor ${e.name} is [${e.shape}], expected [${want}] for the base's ${canonical} [${baseShape}] at rank ${rank}`,
        e.name,
      );
    }
    modules.add(m[2]!);
    tensors.push({ name: `${canonical}.lora_${isA ? 'a' : 'b'}`, file: 0, offset: e.offset, dtype, shape: e.shape });
  }
  const names = new Set(tensors.map((t) => t.name));
  for (const t of tensors) {
    const pair = t.name.endsWith('lora_a') ? t.name.replace(/lora_a$/, 'lora_b') : t.name.replace(/lora_b$/, 'lora_a');
    if (!names.has(pair))
      throw new AdapterMismatchError(file, `tensor for ${pair} is missing (its pair ${t.name} is given)`, pair);
  }
  if (tensors.length === 0) throw new AdapterMismatchError(file, 'no LoRA tensors');
  return {
    path: abs,
    rank,
    scale,
    targetModules: [...modules].sort(),
    ...(cfg.base_model_name_or_path ? { baseModel: cfg.base_model_name_or_path } : {}),
    native: {
      files: [file],
      tensors,
      scale,
      ...(base.ropeLayout === 'interleaved' ? { halfToInterleaved: true } : {}),
    },
  };
}

interface PeftConfig {
  r: number;
  lora_alpha: number;
  use_rslora: boolean;
  base_model_name_or_path?: string;
}

function readConfig(file: string): PeftConfig {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AdapterMismatchError(file, `not JSON: ${(err as Error).message}`);
  }
  if (raw.peft_type !== undefined && raw.peft_type !== 'LORA')
    throw new AdapterMismatchError(file, `peft_type ${String(raw.peft_type)} (only LORA is served)`);
  const r = raw.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1)
    throw new AdapterMismatchError(file, `r must be a positive integer, got ${String(r)}`);
  const alpha = raw.lora_alpha ?? r;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha))
    throw new AdapterMismatchError(file, 'lora_alpha must be a number');
  for (const key of ['use_dora', 'fan_in_fan_out'] as const) {
    if (raw[key] === true) throw new AdapterMismatchError(file, `${key} is not supported`);
  }
  for (const key of ['rank_pattern', 'alpha_pattern'] as const) {
    const v = raw[key];
    if (v && typeof v === 'object' && Object.keys(v).length > 0)
      throw new AdapterMismatchError(file, `${key} is not supported`);
  }
  const bias = raw.bias ?? 'none';
  if (bias !== 'none') throw new AdapterMismatchError(file, `bias '${String(bias)}' is not supported`);
  const name = raw.base_model_name_or_path;
  return {
    r,
    lora_alpha: alpha,
    use_rslora: raw.use_rslora === true,
    ...(typeof name === 'string' && name ? { base_model_name_or_path: name } : {}),
  };
}
