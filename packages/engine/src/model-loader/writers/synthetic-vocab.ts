/**
 * A small Llama-style (SentencePiece BPE with byte fallback) vocabulary for random-weight models, so they
 * come with a real tokenizer in every format: ids 0–2 <unk> <s> </s>, 3–258 byte tokens <0x00>–<0xFF>,
 * then '▁' and the ASCII letters, then pieces built by appending one letter (▁a, ab, ▁ab, abc, …)
 * until vocabSize. Scores fall with the id, so earlier pieces merge first; merges are derived from the
 * pieces and scores the way transformers' Llama converter does, so tokenizer.json, tokenizer.bin and a
 * GGUF vocabulary all encode alike.
 */
const LETTERS = 'etaoinshrdlcumwfgypbvkjxqzETAOINSHRDLCUMWFGYPBVKJXQZ';

export interface SyntheticVocab {
  /** SentencePiece pieces: '▁' for spaces. */
  pieces: string[];
  scores: number[];
  /** llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte. */
  types: number[];
  /** BPE merges "left right", best first. */
  merges: string[];
}

export function syntheticVocab(vocabSize: number): SyntheticVocab {
  if (vocabSize < 259)
    throw new RangeError(`synthetic vocabulary needs vocabSize ≥ 259 (3 specials + 256 bytes), got ${vocabSize}`);
  const pieces = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
  }
  const seen = new Set(pieces);
  const add = (p: string) => {
    if (pieces.length < vocabSize && !seen.has(p)) {
      pieces.push(p);
      types.push(1);
      seen.add(p);
    }
  };
  const base = ['▁', ...LETTERS];
  base.forEach(add);
  const lower = LETTERS.slice(0, 26);
  let level = [...base];
  while (pieces.length < vocabSize) {
    const next: string[] = [];
    for (const p of level) for (const c of lower) next.push(p + c);
    next.sort((a, b) => Number(b.startsWith('▁')) - Number(a.startsWith('▁')));
    next.forEach(add);
    level = next;
  }
  const firstMerged = 3 + 256 + base.length;
  const scores = pieces.map((_, id) => (id < 259 ? 0 : id < firstMerged ? -1e6 - id : -(id - firstMerged)));
  return { pieces, scores, types, merges: deriveMerges(pieces, firstMerged) };
}

/** Every split of every merged piece into two pieces, ordered by the piece's score, then by the ids. */
function deriveMerges(pieces: string[], firstMerged: number): string[] {
  const id = new Map(pieces.map((p, i) => [p, i]));
  const merges: string[] = [];
  for (let i = firstMerged; i < pieces.length; i++) {
    const p = [...pieces[i]!];
    const splits: [number, number, string][] = [];
    for (let k = 1; k < p.length; k++) {
      const l = p.slice(0, k).join(''),
        r = p.slice(k).join('');
      if (id.has(l) && id.has(r)) splits.push([id.get(l)!, id.get(r)!, `${l} ${r}`]);
    }
    splits.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    merges.push(...splits.map((s) => s[2]));
  }
  return merges;
}
