/**
 * Incremental detokenization over token bytes: each token's bytes go through a streaming UTF-8
 * decoder, which holds back the bytes of a character split across tokens (byte-fallback tokens) until
 * the rest arrives, so no text ever contains half a character.
 */
import type { Tokenizer } from './tokenizer/tokenizer.js';

/** What the detokenizer needs of a Tokenizer. */
export type DetokenizerTokenizer = Pick<Tokenizer, 'bosId' | 'stripsLeadingSpace' | 'tokenBytes' | 'isSpecial'>;

export class IncrementalDetokenizer {
  private readonly tokenizer: DetokenizerTokenizer;
  private readonly decoder = new TextDecoder('utf-8');
  /** Right after BOS (or at the start): SentencePiece's dummy-prefix space is dropped there, as decode() does. */
  private atStart: boolean;

  /** `previousTokenId`: the token before the first one pushed (the prompt's last), or -1 for none. */
  constructor(tokenizer: DetokenizerTokenizer, previousTokenId: number) {
    this.tokenizer = tokenizer;
    this.atStart = previousTokenId < 0 || previousTokenId === tokenizer.bosId;
  }

  /** Text completed by this token (possibly ''). Special tokens add no text. */
  push(tokenId: number): string {
    const tok = this.tokenizer;
    if (tokenId === tok.bosId) this.atStart = true;
    if (tok.isSpecial(tokenId)) return '';
    let bytes = tok.tokenBytes(tokenId);
    if (this.atStart && tok.stripsLeadingSpace && bytes[0] === 0x20) bytes = bytes.subarray(1);
    this.atStart = false;
    return this.decoder.decode(bytes, { stream: true });
  }

  /** At the end: whatever bytes are still held (an incomplete character becomes U+FFFD). */
  flush(): string {
    return this.decoder.decode();
  }
}
