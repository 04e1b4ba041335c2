/**
 * SentencePiece-style BPE over a scored vocabulary, exactly as llama2.c's run.c encodes: a dummy-prefix
 * space, one lookup per UTF-8 character (unknown bytes → byte-fallback ids), then repeatedly merge the
 * adjacent pair whose concatenation is in the vocabulary with the highest score (leftmost on ties).
 * Used for tokenizer.bin and GGUF 'llama' vocabularies. Merging uses a heap with lazy invalidation, so
 * long prompts cost O(n log n) instead of run.c's O(n²), with the same result.
 */
import { decodeWithBytes, type EncodeOptions, type Tokenizer } from './tokenizer.js';

export interface SentencePieceVocab {
  /** Piece bytes of each id, as stored (' ' or '▁' for spaces, '<0xNN>' for byte tokens). */
  pieces: Uint8Array[];
  scores: Float32Array | number[];
  /** Ids whose bytes are not text: unk, BOS, EOS, control tokens. */
  special: Set<number>;
  bosId: number;
  eosId: number;
  /** How the vocabulary writes a space: ' ' (llama2.c tokenizer.bin) or '▁' (GGUF, SentencePiece). */
  spaceMarker: ' ' | '▁';
  /** Id of the byte-fallback token for byte 0 (3 in Llama vocabularies); -1 when it has none. */
  byteFallbackBase: number;
}

interface Sym {
  start: number;
  piece: string;
  id: number;
  prev: number;
  next: number;
  alive: boolean;
  version: number;
}
interface Cand {
  score: number;
  left: number;
  right: number;
  lv: number;
  rv: number;
  start: number;
  id: number;
}

export class SentencePieceBpe implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly stripsLeadingSpace = true;
  /** Piece (as a latin1 "byte string") → id; the first id wins for duplicates. */
  private readonly lookup = new Map<string, number>();
  private readonly bytesOf: Uint8Array[];

  constructor(private readonly vocab: SentencePieceVocab) {
    this.vocabSize = vocab.pieces.length;
    this.bosId = vocab.bosId;
    this.eosId = vocab.eosId;
    vocab.pieces.forEach((p, id) => {
      const key = Buffer.from(p).toString('latin1');
      if (!this.lookup.has(key)) this.lookup.set(key, id);
    });
    this.bytesOf = vocab.pieces.map((p, id) => (vocab.special.has(id) ? new Uint8Array(0) : pieceBytes(p)));
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (options.addBos ?? true) out.push(this.bosId);
    if (text === '') return out;
    const marker = this.vocab.spaceMarker;
    const bytes = Buffer.from(marker + (marker === ' ' ? text : text.replaceAll(' ', marker)), 'utf8');
    const syms = this.initialSymbols(bytes);
    this.merge(syms);
    for (const s of syms) if (s.alive) out.push(s.id);
    return out;
  }

  decode(ids: ArrayLike<number>): string {
    return decodeWithBytes(this, ids);
  }

  tokenBytes(id: number): Uint8Array {
    return this.bytesOf[id] ?? new Uint8Array(0);
  }

  isSpecial(id: number): boolean {
    return this.vocab.special.has(id);
  }

  /** One symbol per UTF-8 character found in the vocabulary, else one per byte (id base + byte). */
  private initialSymbols(bytes: Buffer): Sym[] {
    const syms: Sym[] = [];
    const push = (start: number, piece: string, id: number) =>
      syms.push({ start, piece, id, prev: syms.length - 1, next: syms.length + 1, alive: true, version: 0 });
    for (let i = 0; i < bytes.length; ) {
      let end = i + 1;
      // run.c groups a lead byte with up to 3 continuation bytes (10xxxxxx)
      while (end < bytes.length && (bytes[end]! & 0xc0) === 0x80 && end - i < 4) end++;
      const piece = bytes.toString('latin1', i, end);
      const id = this.lookup.get(piece);
      if (id !== undefined) push(i, piece, id);
      else for (let b = i; b < end; b++) push(b, bytes.toString('latin1', b, b + 1), this.byteId(bytes[b]!));
      i = end;
    }
    return syms;
  }

  private byteId(byte: number): number {
    // run.c: "+3 because the first 3 vocab elements are <unk>, <s>, </s>"; without fallback → unk (0)
    return this.vocab.byteFallbackBase >= 0 ? this.vocab.byteFallbackBase + byte : 0;
  }

  private merge(syms: Sym[]): void {
    const heap = new CandHeap();
    const tryPair = (l: number) => {
      const r = syms[l]!.next;
      if (r >= syms.length) return;
      const a = syms[l]!,
        b = syms[r]!;
      const id = this.lookup.get(a.piece + b.piece);
      if (id === undefined) return;
      heap.push({ score: this.vocab.scores[id]!, left: l, right: r, lv: a.version, rv: b.version, start: a.start, id });
    };
    for (let i = 0; i + 1 < syms.length; i++) tryPair(i);
    for (let c = heap.pop(); c; c = heap.pop()) {
      const a = syms[c.left]!,
        b = syms[c.right]!;
      if (!a.alive || !b.alive || a.version !== c.lv || b.version !== c.rv || a.next !== c.right) continue;
      a.piece += b.piece;
      a.id = c.id;
      a.version++;
      a.next = b.next;
      b.alive = false;
      if (b.next < syms.length) syms[b.next]!.prev = c.left;
      if (a.prev >= 0) tryPair(a.prev);
      tryPair(c.left);
    }
  }
}

/** Binary max-heap on (score desc, start asc): the pair run.c's left-to-right strict-> scan would pick. */
class CandHeap {
  private items: Cand[] = [];
  private better(x: Cand, y: Cand): boolean {
    return x.score > y.score || (x.score === y.score && x.start < y.start);
  }
  push(c: Cand): void {
    const h = this.items;
    h.push(c);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.better(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  pop(): Cand | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1,
          r = l + 1;
        let m = i;
        if (l < h.length && this.better(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.better(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/** Text bytes of a piece: '<0xNN>' → that byte, '▁' → ' ', anything else as is. */
export function pieceBytes(piece: Uint8Array): Uint8Array {
  const s = Buffer.from(piece).toString('latin1');
  const m = BYTE_PIECE.exec(s);
  if (m) return Uint8Array.of(parseInt(m[1]!, 16));
  // '▁' is E2 96 81 in UTF-8
  if (!s.includes('\xe2\x96\x81')) return piece;
  return new Uint8Array(Buffer.from(s.replaceAll('\xe2\x96\x81', ' '), 'latin1'));
}
