/**
 * llama2.c tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length, bytes.
 * The file does not store the vocabulary size; it comes from the model (run.c reads exactly vocab_size
 * tokens). Quirk: tok512.bin stores BOS/EOS as "\n<s>\n" / "\n</s>\n"; ids 0–2 are special regardless.
 */
import { readFileSync, statSync } from 'node:fs';
import { ModelFormatError } from '../errors.js';
import { SentencePieceBpe } from './sentencepiece-bpe.js';

/** A tokenizer.bin is small (≈430 kB for 32k tokens), so it is read whole. */
export function readLlama2cTokenizer(file: string, vocabSize?: number): SentencePieceBpe {
  const { pieces, scores } = parseTokenizerBin(file, vocabSize);
  return new SentencePieceBpe({
    pieces,
    scores,
    special: new Set([0, 1, 2]),
    bosId: 1,
    eosId: 2,
    spaceMarker: ' ',
    byteFallbackBase: 3,
  });
}

/**
 * Reads `vocabSize` tokens (all tokens up to the end of the file when not given). More bytes after the
 * last token means the tokenizer belongs to a bigger vocabulary: an error.
 */
export function parseTokenizerBin(
  file: string,
  vocabSize?: number,
): { pieces: Uint8Array[]; scores: Float32Array; maxTokenLength: number } {
  let buf: Buffer;
  try {
    if (statSync(file).size > 64 << 20) throw new ModelFormatError(file, 'too large for a tokenizer.bin');
    buf = readFileSync(file);
  } catch (err) {
    if (err instanceof ModelFormatError) throw err;
    throw new ModelFormatError(file, 'tokenizer file not found or unreadable');
  }
  if (buf.length < 4) throw new ModelFormatError(file, 'truncated: no max_token_length header');
  const maxTokenLength = buf.readInt32LE(0);
  if (maxTokenLength <= 0 || maxTokenLength > 1 << 16)
    throw new ModelFormatError(file, `bad max_token_length ${maxTokenLength}: not a llama2.c tokenizer.bin`);
  const pieces: Uint8Array[] = [];
  const scores: number[] = [];
  let at = 4;
  while (vocabSize === undefined ? at < buf.length : pieces.length < vocabSize) {
    if (at + 8 > buf.length)
      throw new ModelFormatError(file, `truncated: ${pieces.length} tokens read, expected ${vocabSize ?? 'more'}`);
    const score = buf.readFloatLE(at);
    const len = buf.readInt32LE(at + 4);
    at += 8;
    if (len < 0 || len > maxTokenLength || at + len > buf.length) {
      throw new ModelFormatError(
        file,
        `token ${pieces.length} has bad length ${len} (max_token_length ${maxTokenLength}, ${buf.length - at} bytes left)`,
      );
    }
    pieces.push(new Uint8Array(buf.subarray(at, at + len)));
    scores.push(score);
    at += len;
  }
  if (at !== buf.length) {
    throw new ModelFormatError(
      file,
      `vocabulary size mismatch: model has ${vocabSize} tokens but the tokenizer has more`,
    );
  }
  return { pieces, scores: Float32Array.from(scores), maxTokenLength };
}
