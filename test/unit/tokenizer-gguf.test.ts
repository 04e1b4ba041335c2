import { expect, it } from 'vitest';
import { readGgufFile } from '../../packages/engine/src/model-loader/gguf-file.js';
import { ggufTokenizer } from '../../packages/engine/src/tokenizer/gguf-tokenizer.js';
import { readLlama2cTokenizer } from '../../packages/engine/src/tokenizer/llama2c-tokenizer.js';
import { ModelFormatError, UnsupportedModelError } from '../../packages/engine/src/errors.js';
import { describeWithModels, models } from '../helpers/models.js';
import { randomStrings, sampleStrings } from '../fixtures/strings.js';

describeWithModels('GGUF embedded tokenizer (stories260K-f32.gguf)', () => {
  const gguf = readGgufFile(models.stories260KGguf);
  const tok = ggufTokenizer(gguf.file, gguf.metadata);
  const bin = readLlama2cTokenizer(models.tok512, 512);

  it('encodes and decodes exactly as tok512.bin', () => {
    for (const s of [...sampleStrings, ...randomStrings(500, 5)]) {
      expect(tok.encode(s), JSON.stringify(s)).toEqual(bin.encode(s));
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
  });

  it('maps token types to specials and ▁ to a space', () => {
    expect([tok.bosId, tok.eosId, tok.vocabSize]).toEqual([1, 2, 512]);
    expect(tok.isSpecial(0) && tok.isSpecial(1) && tok.isSpecial(2) && !tok.isSpecial(259)).toBe(true);
    for (let id = 3; id < 512; id++) expect(tok.tokenBytes(id)).toEqual(bin.tokenBytes(id));
  });

  it('rejects a missing or non-llama vocabulary with typed errors', () => {
    const md = new Map(gguf.metadata);
    md.set('tokenizer.ggml.model', 'gpt2');
    expect(() => ggufTokenizer('x.gguf', md)).toThrow(UnsupportedModelError);
    md.delete('tokenizer.ggml.model');
    expect(() => ggufTokenizer('x.gguf', md)).toThrow(ModelFormatError);
  });
});
