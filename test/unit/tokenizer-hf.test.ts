import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelFormatError } from '../../packages/engine/src/errors.js';
import { HfTokenizer } from '../../packages/engine/src/tokenizer/hf-tokenizer.js';
import { readLlama2cTokenizer } from '../../packages/engine/src/tokenizer/llama2c-tokenizer.js';
import { readJson } from '../../packages/engine/src/model-loader/hf-config.js';
import { describeWithModels, models } from '../helpers/models.js';
import { randomStrings, sampleStrings } from '../fixtures/strings.js';

describeWithModels('Hugging Face tokenizer.json (stories260K-hf)', () => {
  const dir = models.stories260KHf;
  const tok = HfTokenizer.fromFile(path.join(dir, 'tokenizer.json'), {
    tokenizerConfig: readJson(path.join(dir, 'tokenizer_config.json'), 'tokenizer_config'),
  });
  const bin = readLlama2cTokenizer(models.tok512, 512);

  it('encodes exactly as tok512.bin (llama2.c encode) on many strings', () => {
    const strings = [...sampleStrings, ...randomStrings(1000, 3)];
    for (const s of strings) expect(tok.encode(s), JSON.stringify(s)).toEqual(bin.encode(s));
    for (const s of strings.slice(0, 200))
      expect(tok.encode(s, { addBos: false })).toEqual(bin.encode(s, { addBos: false }));
  });

  it('round-trips ASCII, CJK and emoji', () => {
    for (const s of [...sampleStrings, ...randomStrings(300, 11)]) expect(tok.decode(tok.encode(s))).toBe(s);
  });

  it('gives the same token bytes, specials and ids as tok512.bin', () => {
    expect([tok.vocabSize, tok.bosId, tok.eosId, tok.defaultAddBos, tok.stripsLeadingSpace]).toEqual([
      512,
      1,
      2,
      true,
      true,
    ]);
    for (let id = 0; id < 512; id++) {
      expect(tok.tokenBytes(id), `id ${id}`).toEqual(bin.tokenBytes(id));
      expect(tok.isSpecial(id)).toBe(bin.isSpecial(id));
    }
  });
});

/** A GPT-2 style byte-level BPE: vocabulary of the 256 byte stand-ins plus two merges. */
function byteLevelJson() {
  const chars: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars.push(String.fromCodePoint(printable ? b : 256 + extra++));
  }
  const vocab: Record<string, number> = Object.fromEntries(chars.map((c, i) => [c, i]));
  vocab.Ġh = 256;
  vocab.Ġhi = 257;
  vocab['<|endoftext|>'] = 258;
  return {
    version: '1.0',
    added_tokens: [
      {
        id: 258,
        content: '<|endoftext|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: ['Ġ h', 'Ġh i'],
    },
  };
}

describe('Hugging Face byte-level tokenizer', () => {
  const tok = new HfTokenizer(byteLevelJson(), { tokenizerConfig: { eos_token: '<|endoftext|>' } });

  it('encodes with merges, no BOS, and maps stand-in characters back to bytes', () => {
    expect(tok.bosId).toBe(-1);
    expect(tok.eosId).toBe(258);
    expect(tok.defaultAddBos).toBe(false);
    expect(tok.stripsLeadingSpace).toBe(false);
    const ids = tok.encode('say hi');
    expect(ids).toContain(257);
    expect(Buffer.from(tok.tokenBytes(257)).toString()).toBe(' hi');
    expect(tok.tokenBytes(10)).toEqual(Uint8Array.of(10)); // byte 0x0A's stand-in is 'Ċ'
    expect(tok.isSpecial(258)).toBe(true);
  });

  it('round-trips multibyte text through byte tokens', () => {
    for (const s of ['say hi', '日本 🙂', 'café']) {
      const ids = tok.encode(s);
      expect(tok.decode(ids)).toBe(s);
      expect(Buffer.concat(ids.map((id) => tok.tokenBytes(id))).toString()).toBe(s);
    }
  });
});

describe('Hugging Face tokenizer errors', () => {
  it('names a missing tokenizer.json', () => {
    expect(() => HfTokenizer.fromFile('/nonexistent/tokenizer.json')).toThrow(ModelFormatError);
    expect(() => HfTokenizer.fromFile('/nonexistent/tokenizer.json')).toThrow(/missing tokenizer/);
  });
});
