/**
 * Merges a PEFT LoRA adapter into a Hugging Face model directory (PEFT's merge_and_unload): every
 * targeted weight becomes W + scale · B · A, summed in double and stored as f32; every other tensor
 * and file is copied. The base must be f32; the adapter f32, f16 or bf16 (the merged model is what
 * adapter outputs are checked against).
 */
import { copyFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ModelFormatError } from '../../errors.js';
import { readBytesAt } from '../binary-file.js';
import { readSafetensorsHeader } from '../safetensors-file.js';
import { writeSafetensors } from './peft-writer.js';
import { readJson } from '../hf-config.js';

export async function mergeAdapter(baseDir: string, adapterDir: string, outDir: string): Promise<void> {
  const cfg = readJson(path.join(adapterDir, 'adapter_config.json'), 'adapter_config.json');
  const r = Number(cfg.r);
  const alpha = Number(cfg.lora_alpha ?? r);
  const scale = cfg.use_rslora === true ? alpha / Math.sqrt(r) : alpha / r;
  const adapterFile = path.join(adapterDir, 'adapter_model.safetensors');
  const lora = new Map<string, Float32Array>();
  const loraShapes = new Map<string, number[]>();
  for (const e of readSafetensorsHeader(adapterFile)) {
    const m = /^(?:base_model\.model\.)?(model\.layers\.\d+\.\w+\.\w+)\.lora_([AB])(?:\.default)?\.weight$/.exec(
      e.name,
    );
    if (!m) throw new ModelFormatError(adapterFile, `unexpected tensor ${e.name}`);
    const key = `${m[1]}.weight/${m[2]}`;
    lora.set(key, readF32(adapterFile, e.offset, e.bytes, e.dtype, e.name));
    loraShapes.set(key, e.shape);
  }
  const baseFile = path.join(baseDir, 'model.safetensors');
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const e of readSafetensorsHeader(baseFile)) {
    const w = readF32(baseFile, e.offset, e.bytes, e.dtype, e.name);
    const a = lora.get(`${e.name}/A`);
    const b = lora.get(`${e.name}/B`);
    if (a && b) {
      const [rows, cols] = e.shape as [number, number];
      const rank = loraShapes.get(`${e.name}/A`)![0]!;
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          let d = 0;
          for (let k = 0; k < rank; k++) d += b[i * rank + k]! * a[k * cols + j]!;
          w[i * cols + j] = w[i * cols + j]! + scale * d;
        }
      }
    }
    out.set(e.name, { shape: e.shape, values: w });
  }
  await writeSafetensors(path.join(outDir, 'model.safetensors'), out, 'f32');
  for (const f of await readdir(baseDir)) {
    if (f.endsWith('.json')) await copyFile(path.join(baseDir, f), path.join(outDir, f));
  }
  const config = readJson(path.join(baseDir, 'config.json'), 'config.json');
  await writeFile(path.join(outDir, 'config.json'), JSON.stringify({ ...config, torch_dtype: 'float32' }, null, 2));
}

function readF32(file: string, offset: number, bytes: number, dtype: string, name: string): Float32Array {
  const buf = readBytesAt(file, offset, bytes, name);
  if (dtype === 'F32') return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  if (dtype !== 'F16' && dtype !== 'BF16')
    throw new ModelFormatError(file, `merge reads F32, F16 or BF16 tensors; ${name} is ${dtype}`);
  const out = new Float32Array(bytes / 2);
  const u32 = new Uint32Array(out.buffer);
  for (let i = 0; i < out.length; i++) {
    const h = buf.readUInt16LE(2 * i);
    if (dtype === 'BF16') u32[i] = h << 16;
    else out[i] = halfToFloat(h);
  }
  return out;
}

/** IEEE half bits → number (exact). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
