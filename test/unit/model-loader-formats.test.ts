import { expect, it } from 'vitest';
import { readModelSpec } from '../../packages/engine/src/model-loader/index.js';
import { detectFormat } from '../../packages/engine/src/model-loader/detect-format.js';
import { readGgufFile } from '../../packages/engine/src/model-loader/gguf-file.js';
import { expectedShapes } from '../../packages/engine/src/model-loader/manifest.js';
import { describeWithModels, models } from '../helpers/models.js';
import path from 'node:path';

describeWithModels('readModelSpec on the shared stories260K files', () => {
  it('detects each format from its path', () => {
    expect(detectFormat(models.stories260K).format).toBe('llama2c');
    expect(detectFormat(models.stories260KGguf).format).toBe('gguf');
    expect(detectFormat(models.stories260KHf)).toEqual({ format: 'safetensors', path: models.stories260KHf });
    expect(detectFormat(path.join(models.stories260KHf, 'model.safetensors')).format).toBe('safetensors');
  });

  it('reads the llama2.c checkpoint with tok512.bin found beside it', async () => {
    const spec = await readModelSpec(models.stories260K);
    expect(spec.config).toEqual({
      dim: 64,
      hiddenDim: 172,
      nLayers: 5,
      nHeads: 8,
      nKvHeads: 4,
      vocabSize: 512,
      maxSeqLen: 512,
      ropeTheta: 10000,
      ropeLayout: 'interleaved',
      normEps: 1e-5,
      tiedEmbeddings: true,
    });
    expect(spec.files).toEqual([models.stories260K]);
    expect(spec.tensors).toHaveLength(2 + 5 * 9);
    expect([spec.bosId, spec.eosId, spec.modelName]).toEqual([1, 2, 'stories260K']);
    expect(spec.stopTokenIds).toContain(1); // TinyStories checkpoints end stories with BOS
    expect(spec.tokenizer.vocabSize).toBe(512);
    // w2 (layers, dim, hidden): layer 0 begins after emb, att norms, wq, wk, wv, wo, ffn norms, w1
    const w2 = spec.tensors.find((t) => t.name === 'layers.0.w2')!;
    expect(w2.offset).toBe(
      28 + 4 * (512 * 64 + 5 * 64 + 5 * 64 * 64 + 2 * 5 * 32 * 64 + 5 * 64 * 64 + 5 * 64 + 5 * 172 * 64),
    );
  });

  it('needs tokenizerPath for llama2xs-260K, whose folder has no tokenizer', async () => {
    await expect(readModelSpec(models.llama2xs260K)).rejects.toThrow(/missing tokenizer/);
    const spec = await readModelSpec(models.llama2xs260K, { tokenizerPath: models.tok512 });
    expect(spec.config.hiddenDim).toBe(192);
    expect(spec.config.maxSeqLen).toBe(256);
  });

  it('reads the GGUF file: metadata, tensor infos, innermost-first dims reversed', async () => {
    const g = readGgufFile(models.stories260KGguf);
    expect([g.version, g.alignment, g.tensors.length]).toEqual([3, 32, 48]);
    expect(g.metadata.get('general.architecture')).toBe('llama');
    expect(g.tensors.find((t) => t.name === 'blk.0.attn_k.weight')!.dims).toEqual([64, 32]);
    const spec = await readModelSpec(models.stories260KGguf);
    expect(spec.config).toMatchObject({
      dim: 64,
      hiddenDim: 172,
      nLayers: 5,
      nHeads: 8,
      nKvHeads: 4,
      vocabSize: 512,
      ropeLayout: 'interleaved',
      tiedEmbeddings: false,
    });
    expect(spec.config.maxSeqLen).toBe(128); // llama.cpp's llama2.c converter writes context_length 128
    expect(spec.tensors.find((t) => t.name === 'layers.0.wk')!.shape).toEqual([32, 64]);
    for (const t of spec.tensors) expect((t.offset - g.dataOffset) % 32).toBe(0);
  });

  it('reads the Hugging Face directory with half-split RoPE and the HF tokenizer', async () => {
    const spec = await readModelSpec(models.stories260KHf);
    expect(spec.format).toBe('safetensors');
    expect(spec.config).toMatchObject({
      dim: 64,
      nKvHeads: 4,
      ropeLayout: 'half',
      tiedEmbeddings: true,
      normEps: 1e-5,
    });
    // lm_head.weight is in the file, but the config ties it: the manifest has no 'output'
    expect(spec.tensors.map((t) => t.name).sort()).toEqual([...expectedShapes(spec.config).keys()].sort());
    expect(spec.stopTokenIds).toEqual([2]);
    expect(spec.tokenizer.encode('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
  });
});
