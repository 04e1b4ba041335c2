/**
 * The vocabulary as XGrammar's TokenizerInfo takes it, from any of the engine's tokenizers: every
 * token's raw bytes (Tokenizer.tokenBytes: '<0xNN>' byte-fallback tokens give their byte, '▁' a space)
 * written in GPT-2's byte-to-unicode alphabet, vocabType 'byte_level', which XGrammar decodes back to
 * exactly those bytes — so partial UTF-8 tokens, byte tokens and spaces all match the text the engine
 * outputs. Special tokens have no bytes: an empty string, which XGrammar never allows except as a stop
 * token at the end of a sentence.
 */
import type { Tokenizer } from '../tokenizer/tokenizer.js';

let alphabet: string[] | undefined;

/** GPT-2's bytes_to_unicode(): printable bytes stand for themselves, the rest map to U+0100 onwards. */
export function byteAlphabet(): string[] {
  if (alphabet) return alphabet;
  const out: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCodePoint(printable ? b : 256 + extra++);
  }
  alphabet = out;
  return out;
}

/** Token i's bytes in byte-level form, for i in [0, vocabSize). */
export function byteLevelVocab(tok: Tokenizer, vocabSize: number): string[] {
  const map = byteAlphabet();
  const vocab: string[] = new Array(vocabSize);
  for (let id = 0; id < vocabSize; id++) {
    if (id >= tok.vocabSize || tok.isSpecial(id)) {
      vocab[id] = '';
      continue;
    }
    let s = '';
    for (const b of tok.tokenBytes(id)) s += map[b];
    vocab[id] = s;
  }
  return vocab;
}
