/** Writes a llama2.c v0 checkpoint (f32 only) in the order llama2cLayout() reads it. */
import type { NativeModelConfig } from '../../native/native-types.js';
import { llama2cLayout } from '../llama2c-reader.js';
import { FileSink } from './file-sink.js';
import type { WeightSource } from './random-tensors.js';

export async function writeLlama2c(file: string, config: NativeModelConfig, weights: WeightSource): Promise<void> {
  if (config.ropeTheta !== 10000 || config.normEps !== 1e-5) {
    throw new RangeError('llama2.c checkpoints cannot store ropeTheta/normEps: they must be 10000 and 1e-5');
  }
  const header = new Int32Array([
    config.dim,
    config.hiddenDim,
    config.nLayers,
    config.nHeads,
    config.nKvHeads,
    config.tiedEmbeddings ? config.vocabSize : -config.vocabSize,
    config.maxSeqLen,
  ]);
  const sink = await FileSink.create(file);
  try {
    await sink.write(new Uint8Array(header.buffer));
    const { tensors, end } = llama2cLayout(config);
    for (const t of tensors) {
      if (t.offset > sink.pos) await sink.write(new Uint8Array(t.offset - sink.pos)); // unused RoPE tables
      for (const chunk of weights.chunks(t.name, t.shape)) await sink.write(new Uint8Array(chunk.buffer));
    }
    if (end > sink.pos) await sink.write(new Uint8Array(end - sink.pos));
  } finally {
    await sink.close();
  }
}
