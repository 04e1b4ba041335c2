/**
 * Prompt-lookup proposals (no model): find the latest earlier occurrence of the sequence's last n
 * tokens (n from maxN down to minN) and propose the tokens that followed it. Pays off where output
 * repeats its input (extraction, code edits, summaries quoting the source).
 */

export interface NgramOptions {
  /** Longest suffix tried first. Default 4. */
  maxN?: number;
  /** Shortest suffix accepted. Default 1. */
  minN?: number;
}

/**
 * Up to k proposed tokens continuing `tokens[0, len)`, or [] when no suffix of length minN..maxN
 * occurred earlier. A match close to the end continues into the proposal itself (the text is taken
 * as periodic from the match on, as an LZ77 copy), so a loop yields k tokens, not one. Pure.
 */
export function proposeNgram(tokens: ArrayLike<number>, len: number, k: number, opts: NgramOptions = {}): number[] {
  const maxN = opts.maxN ?? 4;
  const minN = opts.minN ?? 1;
  for (let n = Math.min(maxN, len - 1); n >= minN; n--) {
    // Latest match first: recent context predicts best.
    for (let start = len - n - 1; start >= 0; start--) {
      if (!matchesSuffix(tokens, len, start, n)) continue;
      const out: number[] = [];
      for (let j = start + n; out.length < k; j++) out.push(j < len ? tokens[j]! : out[j - len]!);
      return out;
    }
  }
  return [];
}

function matchesSuffix(tokens: ArrayLike<number>, len: number, start: number, n: number): boolean {
  for (let j = 0; j < n; j++) if (tokens[start + j] !== tokens[len - n + j]) return false;
  return true;
}
