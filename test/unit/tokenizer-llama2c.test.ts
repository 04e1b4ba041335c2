import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ModelFormatError } from '../../packages/engine/src/errors.js';
import { parseTokenizerBin, readLlama2cTokenizer } from '../../packages/engine/src/tokenizer/llama2c-tokenizer.js';
import { describeWithModels, models } from '../helpers/models.js';
import { randomStrings, sampleStrings } from '../fixtures/strings.js';

/** run.c's encode() transcribed literally (O(n²) scan), as an independent check of the heap version. */
function runCEncode(pieces: Uint8Array[], scores: Float32Array, text: string): number[] {
  const vocab = new Map<string, number>();
  pieces.forEach((p, i) => {
    const k = Buffer.from(p).toString('latin1');
    if (!vocab.has(k)) vocab.set(k, i);
  });
  const tokens: number[] = [1];
  if (text === '') return tokens;
  tokens.push(vocab.get(' ')!);
  const bytes = Buffer.from(text, 'utf8');
  let buf = '';
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if ((c & 0xc0) !== 0x80) buf = '';
    buf += String.fromCharCode(c);
    if (i + 1 < bytes.length && (bytes[i + 1]! & 0xc0) === 0x80 && buf.length < 4) continue;
    const id = vocab.get(buf);
    if (id !== undefined) tokens.push(id);
    else for (const ch of buf) tokens.push(ch.charCodeAt(0) + 3);
    buf = '';
  }
  for (;;) {
    let best = -1e10,
      bestId = -1,
      bestIdx = -1;
    for (let i = 1; i < tokens.length - 1; i++) {
      const s =
        Buffer.from(pieces[tokens[i]!]!).toString('latin1') + Buffer.from(pieces[tokens[i + 1]!]!).toString('latin1');
      const id = vocab.get(s);
      if (id !== undefined && scores[id]! > best) {
        best = scores[id]!;
        bestId = id;
        bestIdx = i;
      }
    }
    if (bestIdx === -1) break;
    tokens.splice(bestIdx, 2, bestId);
  }
  return tokens;
}

describeWithModels('llama2.c tokenizer.bin', () => {
  const tok = readLlama2cTokenizer(models.tok512, 512);
  const { pieces, scores } = parseTokenizerBin(models.tok512, 512);

  it('encodes the goldens prompt as run.c does', () => {
    const goldens = JSON.parse(readFileSync(models.goldens, 'utf8'));
    const ids: number[] = goldens.stories260K.greedy_from_bos_48;
    const text = tok.decode(ids);
    expect(text.startsWith('Once upon a time')).toBe(true);
    expect(tok.encode('Once upon a time')).toEqual(ids.slice(0, 5));
  });

  it('matches a literal transcription of run.c encode() on many strings', () => {
    for (const s of [...sampleStrings, ...randomStrings(300)])
      expect(tok.encode(s), JSON.stringify(s)).toEqual(runCEncode(pieces, scores, s));
  });

  it('round-trips ASCII and multibyte UTF-8 through byte fallback', () => {
    for (const s of [...sampleStrings, ...randomStrings(300, 7)]) expect(tok.decode(tok.encode(s))).toBe(s);
  });

  it('has BOS 1, EOS 2 as specials with no text, and byte tokens giving their byte', () => {
    expect([tok.bosId, tok.eosId, tok.vocabSize]).toEqual([1, 2, 512]);
    expect(tok.isSpecial(1) && tok.isSpecial(2) && tok.isSpecial(0)).toBe(true);
    expect(tok.tokenBytes(1)).toEqual(new Uint8Array(0));
    expect(tok.tokenBytes(3 + 0xe6)).toEqual(Uint8Array.of(0xe6));
    expect(Buffer.from(tok.tokenBytes(403)).toString()).toBe(' Once');
    expect(tok.encode('hi', { addBos: false })[0]).not.toBe(1);
  });

  it('decode strips the dummy-prefix space only at the start and after BOS', () => {
    const once = tok.encode('Once', { addBos: false });
    expect(tok.decode([1, ...once, 1, ...once])).toBe('OnceOnce');
    expect(tok.decode([...once, ...once])).toBe('Once Once');
  });

  it('encodes a long prompt quickly (heap merges, not O(n²))', () => {
    const long = 'Once upon a time, there was a little girl named Lily. '.repeat(400);
    const ids = tok.encode(long);
    expect(tok.decode(ids)).toBe(long);
  });

  it('reads the 32k Llama 2 vocabulary and encodes as Llama 2 does', () => {
    const llama = readLlama2cTokenizer(models.llamaTokenizer, 32000);
    expect(llama.encode('Hello world')).toEqual([1, 15043, 3186]);
    for (const s of sampleStrings) expect(llama.decode(llama.encode(s))).toBe(s);
  });

  it('rejects a vocabulary size that does not match the file', () => {
    expect(() => readLlama2cTokenizer(models.tok512, 600)).toThrow(ModelFormatError);
    expect(() => readLlama2cTokenizer(models.tok512, 100)).toThrow(/vocabulary size mismatch/);
  });
});

describe('llama2.c tokenizer errors', () => {
  it('names a missing file', () => {
    expect(() => readLlama2cTokenizer('/nonexistent/tokenizer.bin', 10)).toThrow(/\/nonexistent\/tokenizer.bin: /);
  });
});
