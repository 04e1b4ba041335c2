/** What the engine needs from any tokenizer (llama2.c tokenizer.bin, tokenizer.json, GGUF-embedded). */
export interface EncodeOptions {
  /** Put the BOS token first. Default: the tokenizer's own convention (true for Llama-style vocabularies). */
  addBos?: boolean;
}

export interface Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  /**
   * decode() drops one leading space at the start of the text and right after BOS (SentencePiece's
   * dummy prefix). An incremental detokenizer built on tokenBytes() must do the same.
   */
  readonly stripsLeadingSpace: boolean;
  encode(text: string, options?: EncodeOptions): number[];
  /** Text of the ids; special tokens (BOS, EOS, UNK, control tokens) are skipped. */
  decode(ids: ArrayLike<number>): string;
  /**
   * The raw bytes a token stands for: byte-fallback tokens <0xNN> give that byte, the ▁ marker gives ' ',
   * special tokens give no bytes. May be a partial UTF-8 character.
   */
  tokenBytes(id: number): Uint8Array;
  isSpecial(id: number): boolean;
}

const utf8 = new TextDecoder('utf-8');

/**
 * decode() shared by the SentencePiece-style tokenizers: join the token bytes, skip specials, drop the
 * dummy-prefix space at the start or after BOS, then decode UTF-8 once (so split characters join up).
 */
export function decodeWithBytes(tok: Tokenizer, ids: ArrayLike<number>): string {
  const parts: Uint8Array[] = [];
  let atStart = true;
  let total = 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id === tok.bosId) atStart = true;
    if (tok.isSpecial(id)) continue;
    let bytes = tok.tokenBytes(id);
    if (atStart && tok.stripsLeadingSpace && bytes[0] === 0x20) bytes = bytes.subarray(1);
    atStart = false;
    parts.push(bytes);
    total += bytes.length;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return utf8.decode(out);
}
