/**
 * Malformed or unsupported pre-quantized checkpoints: each fails with a typed error naming the tensor
 * (ModelFormatError from the reader; the addon's own E_SHAPE when the reader is bypassed), and
 * bitsandbytes / other methods are refused with the list of what is read.
 */
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync, closeSync, cpSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelFormatError, UnsupportedModelError } from '../../packages/engine/src/errors.js';
import { readModelSpec } from '../../packages/engine/src/model-loader/read-model-spec.js';
import { makeRandomModel } from '../../packages/engine/src/model-loader/random-model.js';
import { makeRandomQuantizedModel } from '../../packages/engine/src/model-loader/random-quantized-model.js';
import { readSafetensorsHeader } from '../../packages/engine/src/model-loader/safetensors-file.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';

const CONFIG = { dim: 128, hiddenDim: 256, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 300, maxSeqLen: 32 };

describe('pre-quantized checkpoint errors', () => {
  let tmp: string;
  let gptq: string;
  let plain: string;
  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'flotilla-gptq-err-'));
    gptq = await makeRandomQuantizedModel(CONFIG, {
      dir: path.join(tmp, 'gptq'),
      scheme: { method: 'gptq', bits: 4, groupSize: 64, sym: false },
    });
    plain = await makeRandomModel(CONFIG, { format: 'safetensors', dir: path.join(tmp, 'plain') });
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  /** A copy of the GPTQ checkpoint to break. */
  function copy(name: string): string {
    const dir = path.join(tmp, name);
    cpSync(gptq, dir, { recursive: true });
    return dir;
  }
  function editConfig(dir: string, edit: (c: Record<string, any>) => void): void {
    const file = path.join(dir, 'config.json');
    const c = JSON.parse(readFileSync(file, 'utf8'));
    edit(c);
    writeFileSync(file, JSON.stringify(c));
  }
  function pokeInt32(dir: string, tensor: string, index: number, value: number): void {
    const file = path.join(dir, 'model.safetensors');
    const e = readSafetensorsHeader(file).find((x) => x.name === tensor)!;
    const b = Buffer.alloc(4);
    b.writeInt32LE(value);
    const fd = openSync(file, 'r+');
    writeSync(fd, b, 0, 4, e.offset + 4 * index);
    closeSync(fd);
  }

  it('reads the checkpoint as packed layers', async () => {
    const spec = await readModelSpec(gptq);
    expect(spec.tensors.filter((t) => t.dtype === 'gptq')).toHaveLength(14);
  });

  it('a qzeros of the wrong shape names the tensor', async () => {
    const dir = copy('shape');
    editConfig(dir, (c) => (c.quantization_config.group_size = 128)); // the tensors were written for 64
    const err = await readModelSpec(dir).catch((e) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect(err.message).toMatch(/tensor model\.layers\.0\.self_attn\.q_proj\.qzeros is \[2,16\], expected \[1,16\]/);
  });

  it('missing scales name the tensor', async () => {
    const dir = copy('missing');
    const file = path.join(dir, 'model.safetensors');
    const bytes = readFileSync(file);
    const at = bytes.indexOf('model.layers.1.mlp.down_proj.scales');
    bytes.write('model.layers.1.mlp.down_proj.scalez', at); // same length: the header stays valid
    writeFileSync(file, bytes);
    const err = await readModelSpec(dir).catch((e) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect(err.message).toMatch(/missing tensor model\.layers\.1\.mlp\.down_proj\.scales/);
  });

  it('a g_idx out of range names the tensor, in the reader and in the addon', async () => {
    const dir = copy('gidx');
    const spec = await readModelSpec(dir); // read while still valid: the addon is then given the bad bytes
    pokeInt32(dir, 'model.layers.0.self_attn.k_proj.g_idx', 5, 9);
    const err = await readModelSpec(dir).catch((e) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect(err.message).toMatch(
      /tensor model\.layers\.0\.self_attn\.k_proj\.g_idx maps input 5 to group 9, outside 0\.\.1/,
    );
    const native = await loadNative()
      .loadModel({ config: spec.config, files: spec.files, tensors: spec.tensors, numBlocks: 4 })
      .catch((e) => e);
    expect(native.code).toBe('E_SHAPE');
    expect(native.message).toMatch(/model\.layers\.0\.self_attn\.k_proj\.g_idx' maps input 5 to group 9/);
  });

  it('the addon checks the parts itself when the reader is bypassed', async () => {
    const spec = await readModelSpec(gptq);
    const load = (edit: (q: NonNullable<(typeof spec.tensors)[number]['quant']>) => void) => {
      const tensors = structuredClone(spec.tensors);
      edit(tensors.find((t) => t.name === 'layers.1.w2')!.quant!);
      return loadNative()
        .loadModel({ config: spec.config, files: spec.files, tensors, numBlocks: 4 })
        .catch((e) => e);
    };
    const shape = await load((q) => (q.qzeros.shape = [3, 16]));
    expect(shape.code).toBe('E_SHAPE');
    expect(shape.message).toMatch(
      /tensor 'model\.layers\.1\.mlp\.down_proj\.qzeros' has shape \[3,16\], expected \[4,16\]/,
    );
    const missing = await load((q) => delete (q as { scales?: unknown }).scales);
    expect(missing.code).toBe('E_SHAPE');
    expect(missing.message).toMatch(/tensor 'model\.layers\.1\.mlp\.down_proj\.scales' is missing/);
    const dtype = await load((q) => (q.scales.dtype = 'i32'));
    expect(dtype.code).toBe('E_DTYPE');
    expect(dtype.message).toMatch(/down_proj\.scales' has the wrong element type/);
  });

  it('groups that are not whole blocks of 32 are refused by the addon', async () => {
    const dir = copy('blocks');
    pokeInt32(dir, 'model.layers.1.mlp.up_proj.g_idx', 0, 1); // group 0 keeps 63 inputs, group 1 gets 65
    const spec = await readModelSpec(dir); // in range: the reader lets it through
    const err = await loadNative()
      .loadModel({ config: spec.config, files: spec.files, tensors: spec.tensors, numBlocks: 4 })
      .catch((e) => e);
    expect(err.code).toBe('E_SHAPE');
    expect(err.message).toMatch(/up_proj\.g_idx': inputs 32\.\.63 \(in group order\) span two groups/);
  });

  it('bitsandbytes nf4 is refused, saying what is supported', async () => {
    const dir = path.join(tmp, 'bnb');
    cpSync(plain, dir, { recursive: true });
    editConfig(dir, (c) => {
      c.quantization_config = { quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'nf4' };
    });
    const err = await readModelSpec(dir).catch((e) => e);
    expect(err).toBeInstanceOf(UnsupportedModelError);
    expect(err.message).toMatch(/unsupported: bitsandbytes nf4 checkpoints \(supported: .*GPTQ.*AWQ \(4-bit GEMM\)/);
  });

  it('other methods and layouts are refused by name', async () => {
    for (const [qc, msg] of [
      [{ quant_method: 'fp8' }, /quantization method 'fp8'/],
      [{ quant_method: 'awq', bits: 4, group_size: 128, version: 'gemv' }, /AWQ version 'gemv'/],
      [{ quant_method: 'gptq', bits: 3, group_size: 128 }, /gptq with 3 bits/],
      [{ quant_method: 'gptq', bits: 4, group_size: 48 }, /group size 48/],
    ] as const) {
      const dir = path.join(tmp, `m-${String(msg).replace(/\W+/g, '')}`);
      cpSync(gptq, dir, { recursive: true });
      editConfig(dir, (c) => (c.quantization_config = qc));
      const err = await readModelSpec(dir).catch((e) => e);
      expect(err).toBeInstanceOf(UnsupportedModelError);
      expect(err.message).toMatch(msg);
    }
  });

  it("quantization must match the checkpoint (vLLM's quantization=)", async () => {
    await expect(readModelSpec(gptq, { quantization: 'gptq' })).resolves.toBeTruthy();
    await expect(readModelSpec(gptq, { quantization: 'awq' })).rejects.toThrow(/asked for but the checkpoint is gptq/);
    await expect(readModelSpec(plain, { quantization: 'gptq' })).rejects.toThrow(/has no quantization_config/);
  });
});
