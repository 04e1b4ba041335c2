import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelFormatError, UnsupportedModelError } from '../../packages/engine/src/errors.js';
import { makeRandomModel, readModelSpec } from '../../packages/engine/src/model-loader/index.js';
import { fullConfig } from '../../packages/engine/src/model-loader/random-model.js';
import { llamaMetadata, writeGguf, type GgufKv } from '../../packages/engine/src/model-loader/writers/gguf-writer.js';
import { RandomWeights } from '../../packages/engine/src/model-loader/writers/random-tensors.js';
import { syntheticVocab } from '../../packages/engine/src/model-loader/writers/synthetic-vocab.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'flotilla-bad-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const tiny = {
  dim: 64,
  hiddenDim: 96,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  vocabSize: 320,
  maxSeqLen: 32,
  tiedEmbeddings: false,
};
let bin = '',
  gguf = '',
  hfDir = '';

beforeAll(async () => {
  bin = await makeRandomModel(tiny, { format: 'llama2c', dir: path.join(tmp, 'bin'), seed: 1 });
  gguf = await makeRandomModel(tiny, { format: 'gguf', dir: path.join(tmp, 'gguf'), seed: 1 });
  hfDir = await makeRandomModel(tiny, { format: 'safetensors', dir: path.join(tmp, 'hf'), seed: 1 });
});

/** Writes `bytes` as a new file and returns its path. */
function variant(name: string, bytes: Uint8Array): string {
  const file = path.join(tmp, name);
  writeFileSync(file, bytes);
  return file;
}

/** Expects readModelSpec to reject with a ModelFormatError whose message names `file` and matches `problem`. */
async function rejects(p: string, problem: RegExp, file = p, cls: typeof ModelFormatError = ModelFormatError) {
  const err = await readModelSpec(p).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `${p} should be rejected`).toBeInstanceOf(cls);
  const e = err as ModelFormatError;
  expect(e.file).toBe(file);
  expect(e.message).toContain(file);
  expect(e.problem).toMatch(problem);
  expect(e.code).toBe(cls === UnsupportedModelError ? 'E_MODEL_UNSUPPORTED' : 'E_MODEL_FORMAT');
}

function copyDir(name: string): string {
  const dir = path.join(tmp, name);
  cpSync(hfDir, dir, { recursive: true });
  return dir;
}

describe('bad model files give ModelFormatError naming the file', () => {
  it('missing path', async () => rejects(path.join(tmp, 'nope.bin'), /not found/));

  it('truncated llama2.c checkpoint', async () => {
    const bytes = readFileSync(bin);
    const file = variant('bin/trunc.bin', bytes.subarray(0, bytes.length - 100));
    await rejects(file, /truncated/);
  });

  it('wrong magic: text file, and a .gguf that is not GGUF', async () => {
    await rejects(
      variant('notes.txt', Buffer.from('hello, this is not a model at all, just some text\n')),
      /not a llama2.c checkpoint/,
    );
    await rejects(variant('fake.gguf', Buffer.from('GGML0000000000000000000000000000')), /wrong magic/);
  });

  it('truncated GGUF, at every cut point in the header and inside the data', async () => {
    const bytes = readFileSync(gguf);
    for (const cut of [3, 8, 20, 100, 1000, 5000, 9000, bytes.length - 1]) {
      await rejects(variant('cut.gguf', bytes.subarray(0, cut)), /truncated|wrong magic/);
    }
  });

  it('corrupted GGUF header bytes never crash: a typed error or a valid spec', async () => {
    const bytes = readFileSync(gguf);
    let s = 12345;
    for (let trial = 0; trial < 150; trial++) {
      const copy = Buffer.from(bytes.subarray(0, Math.min(bytes.length, 12000)));
      for (let k = 0; k < 4; k++) {
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        copy[4 + (s % (copy.length - 4))] = s >>> 24;
      }
      const file = variant('fuzz.gguf', Buffer.concat([copy, bytes.subarray(copy.length)]));
      await readModelSpec(file).catch((e: unknown) => expect(e).toBeInstanceOf(ModelFormatError));
    }
  });

  it('unsupported tensor type names the type', async () => {
    const bytes = Buffer.from(readFileSync(gguf));
    const name = Buffer.from('blk.0.attn_q.weight');
    const at = bytes.indexOf(name) + name.length + 4 + 2 * 8; // after n_dims and two dims
    bytes.writeUInt32LE(12, at); // Q4_K
    await rejects(
      variant('q4k.gguf', bytes),
      /unsupported: tensor type Q4_K of blk\.0\.attn_q\.weight/,
      undefined,
      UnsupportedModelError,
    );
  });

  it('missing tensor', async () => {
    const bytes = Buffer.from(readFileSync(gguf));
    const at = bytes.indexOf(Buffer.from('blk.1.ffn_up.weight'));
    bytes.write('blk.1.ffn_xx.weight', at);
    await rejects(variant('missing.gguf', bytes), /missing tensor blk\.1\.ffn_up\.weight/);
  });

  it('inconsistent shapes between metadata and tensors', async () => {
    const config = fullConfig(tiny);
    const md = llamaMetadata(config, syntheticVocab(config.vocabSize), 'bad').map(
      (kv): GgufKv => (kv.key === 'llama.feed_forward_length' ? { key: kv.key, type: 'u32', value: 128 } : kv),
    );
    const file = path.join(tmp, 'shape.gguf');
    await writeGguf(file, config, new RandomWeights(config, { seed: 1 }), md);
    await rejects(
      file,
      /inconsistent shape: tensor blk\.0\.ffn_gate\.weight is \[96,64\], the config implies \[128,64\]/,
    );
  });

  it('missing tokenizer beside a llama2.c checkpoint or in an HF directory', async () => {
    const dir = path.join(tmp, 'notok');
    cpSync(path.dirname(bin), dir, { recursive: true });
    unlinkSync(path.join(dir, 'tokenizer.bin'));
    await rejects(path.join(dir, 'model.bin'), /missing tokenizer/);
    const hf = copyDir('hf-notok');
    unlinkSync(path.join(hf, 'tokenizer.json'));
    await rejects(hf, /missing tokenizer/, path.join(hf, 'tokenizer.json'));
  });

  it('Qwen2 attention biases are rejected, not silently dropped', async () => {
    const dir = copyDir('qwen2');
    const cfgFile = path.join(dir, 'config.json');
    writeFileSync(
      cfgFile,
      JSON.stringify({
        ...JSON.parse(readFileSync(cfgFile, 'utf8')),
        architectures: ['Qwen2ForCausalLM'],
        model_type: 'qwen2',
      }),
    );
    const st = path.join(dir, 'model.safetensors');
    const bytes = readFileSync(st);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString());
    header['model.layers.0.self_attn.q_proj.bias'] = { dtype: 'F32', shape: [64], data_offsets: [0, 256] };
    const json = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeFileSync(st, Buffer.concat([len, json, bytes.subarray(8 + n)]));
    await rejects(dir, /unsupported: attention biases/, st, UnsupportedModelError);
  });

  it('unsupported architectures and RoPE scaling in config.json', async () => {
    for (const [name, patch, problem] of [
      ['gpt2', { architectures: ['GPT2LMHeadModel'] }, /architecture GPT2LMHeadModel/],
      ['scaled', { rope_scaling: { rope_type: 'llama3', factor: 8 } }, /RoPE scaling/],
    ] as const) {
      const dir = copyDir(name);
      const cfgFile = path.join(dir, 'config.json');
      writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(readFileSync(cfgFile, 'utf8')), ...patch }));
      await rejects(dir, problem, cfgFile, UnsupportedModelError);
    }
  });

  it('safetensors header that lies about sizes', async () => {
    const dir = copyDir('liar');
    const st = path.join(dir, 'model.safetensors');
    const bytes = readFileSync(st);
    await rejects(variant('liar/model.safetensors', bytes.subarray(0, bytes.length - 10)), /truncated/, st);
    writeFileSync(st, Buffer.concat([Buffer.from([0xff, 0xff, 0, 0, 0, 0, 0, 0]), bytes.subarray(8)]));
    await rejects(dir, /not a safetensors header|not JSON/, st);
  });
});
