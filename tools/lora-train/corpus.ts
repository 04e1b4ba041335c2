/**
 * A fine-tuning corpus → token sequences. The file is JSON Lines ({"text": ...} per line) or plain
 * text with documents separated by blank lines. Each document becomes [BOS] + its tokens + [BOS]:
 * the TinyStories models end a story by emitting BOS, so the trained adapter keeps that habit.
 */
import { readFileSync } from 'node:fs';
import type { Tokenizer } from '../../packages/engine/src/tokenizer/index.js';

export function readCorpus(file: string): string[] {
  const raw = readFileSync(file, 'utf8');
  if (file.endsWith('.jsonl')) {
    return raw
      .split('\n')
      .filter((l) => l.trim())
      .map((l, i) => {
        const text = (JSON.parse(l) as { text?: unknown }).text;
        if (typeof text !== 'string') throw new Error(`${file}:${i + 1}: no "text" string`);
        return text;
      });
  }
  return raw
    .split(/\n\s*\n/)
    .map((d) => d.trim())
    .filter(Boolean);
}

/** Token ids of each document, cut to `maxLen` tokens (BOS included). */
export function tokenizeCorpus(docs: string[], tok: Tokenizer, maxLen: number): number[][] {
  return docs.map((d) => [...tok.encode(d, { addBos: true }), tok.bosId].slice(0, maxLen));
}
