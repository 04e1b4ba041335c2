/**
 * The benchmark's prompts, after vLLM's serving benchmark: `random` (lengths around a mean),
 * `prefix-repetition` (a few shared prefixes, unique suffixes: exercises prefix caching) and `file`
 * (JSONL). The benchmark talks to any OpenAI-compatible server, so it owns no tokenizer: lengths are
 * counted in words from a list of common English words, each of which most tokenizers encode as one
 * token or a few; the report uses the server's own token counts (usage) when it sends them.
 */
import type { Rng } from './rng.js';

export interface BenchRequest {
  prompt: string;
  /** Prompt length as the dataset measures it (words), used when the server reports no usage. */
  promptLen: number;
  /** max_tokens to ask for. */
  outputLen: number;
}

export interface RandomDatasetOptions {
  count: number;
  /** Mean prompt length in words. Default: 128. */
  inputLen?: number;
  /** Mean output length in tokens (max_tokens). Default: 64. */
  outputLen?: number;
  /** Lengths are uniform in [len * (1 - r), len * (1 + r)]. Default: 0 (every request the same). */
  rangeRatio?: number;
  /** Words shared by every prompt before its random part. Default: 0. */
  prefixLen?: number;
}

export interface PrefixRepetitionOptions {
  count: number;
  /** Words in each shared prefix. Default: 256. */
  prefixLen?: number;
  /** Words in each request's own suffix. Default: 64. */
  suffixLen?: number;
  /** Distinct prefixes, assigned round-robin then shuffled. Default: 4. */
  numPrefixes?: number;
  /** max_tokens of every request. Default: 64. */
  outputLen?: number;
}

// Short, frequent words: stable under most BPE vocabularies and harmless as model input.
const WORDS = (
  'the of and to in is was he for it with as his on be at by had are but from or have an they which one you were ' +
  'her all she there would their we him been has when who will more no if out so said what up its about into than them can ' +
  'only other new some could time these two may then do first any my now such like our over man me even most made after also ' +
  'did many before must through back years where much your way well down should because each just those people how too little ' +
  'state good very make world still own see men work long get here between both life being under never day same another know ' +
  'while last might us great old year off come since against go came right used take three'
).split(' ');

export function randomWords(rng: Rng, n: number): string {
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = WORDS[rng.int(0, WORDS.length - 1)]!;
  return out.join(' ');
}

function lengthAround(rng: Rng, mean: number, ratio: number): number {
  const lo = Math.max(1, Math.floor(mean * (1 - ratio)));
  const hi = Math.max(lo, Math.ceil(mean * (1 + ratio)));
  return rng.int(lo, hi);
}

export function randomDataset(o: RandomDatasetOptions, rng: Rng): BenchRequest[] {
  const inputLen = o.inputLen ?? 128;
  const outputLen = o.outputLen ?? 64;
  const ratio = o.rangeRatio ?? 0;
  if (ratio < 0 || ratio >= 1) throw new RangeError(`range ratio must be in [0, 1) (got ${ratio})`);
  const prefixLen = o.prefixLen ?? 0;
  const prefix = prefixLen > 0 ? `${randomWords(rng, prefixLen)} ` : '';
  return Array.from({ length: o.count }, () => {
    const len = lengthAround(rng, inputLen, ratio);
    return {
      prompt: prefix + randomWords(rng, len),
      promptLen: prefixLen + len,
      outputLen: lengthAround(rng, outputLen, ratio),
    };
  });
}

export function prefixRepetitionDataset(o: PrefixRepetitionOptions, rng: Rng): BenchRequest[] {
  const prefixLen = o.prefixLen ?? 256;
  const suffixLen = o.suffixLen ?? 64;
  const numPrefixes = o.numPrefixes ?? 4;
  const outputLen = o.outputLen ?? 64;
  if (numPrefixes < 1) throw new RangeError(`need at least one prefix (got ${numPrefixes})`);
  const prefixes = Array.from({ length: numPrefixes }, () => randomWords(rng, prefixLen));
  const out = Array.from({ length: o.count }, (_, i) => ({
    prompt: `${prefixes[i % numPrefixes]} ${randomWords(rng, suffixLen)}`,
    promptLen: prefixLen + suffixLen,
    outputLen,
  }));
  return shuffle(out, rng);
}

/** Fisher–Yates, in place: so requests sharing a prefix do not all arrive back to back. */
export function shuffle<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/**
 * Parses a JSONL prompt file: each line a JSON string, or an object with `prompt` and optionally
 * `max_tokens` / `output_len`. Lines are reused round-robin when `count` exceeds them.
 */
export function parsePromptFile(text: string, count: number, defaultOutputLen = 64): BenchRequest[] {
  const entries: BenchRequest[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new SyntaxError(`line ${i + 1} is not JSON`);
    }
    const obj = typeof value === 'string' ? { prompt: value } : (value as Record<string, unknown> | null);
    if (!obj || typeof obj.prompt !== 'string') throw new SyntaxError(`line ${i + 1} has no "prompt" string`);
    const out = obj.max_tokens ?? obj.output_len ?? defaultOutputLen;
    if (typeof out !== 'number' || !Number.isInteger(out) || out < 1)
      throw new SyntaxError(`line ${i + 1}: max_tokens must be an integer >= 1`);
    entries.push({ prompt: obj.prompt, promptLen: countWords(obj.prompt), outputLen: out });
  });
  if (entries.length === 0) throw new SyntaxError('the file holds no prompts');
  return Array.from({ length: count }, (_, i) => entries[i % entries.length]!);
}

function countWords(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}
