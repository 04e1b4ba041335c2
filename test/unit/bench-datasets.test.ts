import { describe, expect, it } from 'vitest';
import {
  parsePromptFile,
  prefixRepetitionDataset,
  randomDataset,
} from '../../packages/deployments/src/bench/datasets.js';
import { createRng } from '../../packages/deployments/src/bench/rng.js';
import { runRequests } from '../../packages/deployments/src/bench/runner.js';

const words = (s: string) => s.split(' ').length;

describe('datasets', () => {
  it('random: fixed lengths without a range ratio, bounded lengths with one, same prompts for the same seed', () => {
    const fixed = randomDataset({ count: 20, inputLen: 30, outputLen: 7 }, createRng(3));
    expect(fixed.every((r) => words(r.prompt) === 30 && r.promptLen === 30 && r.outputLen === 7)).toBe(true);
    const ranged = randomDataset({ count: 200, inputLen: 100, outputLen: 10, rangeRatio: 0.5 }, createRng(3));
    expect(Math.min(...ranged.map((r) => r.promptLen))).toBeGreaterThanOrEqual(50);
    expect(Math.max(...ranged.map((r) => r.promptLen))).toBeLessThanOrEqual(150);
    expect(new Set(ranged.map((r) => r.promptLen)).size).toBeGreaterThan(10);
    expect(randomDataset({ count: 20, inputLen: 30 }, createRng(3))).toEqual(
      randomDataset({ count: 20, inputLen: 30 }, createRng(3)),
    );
  });

  it('random with a prefix: every prompt opens with the same words', () => {
    const ds = randomDataset({ count: 5, inputLen: 10, prefixLen: 8 }, createRng(1));
    const head = (s: string) => s.split(' ').slice(0, 8).join(' ');
    expect(new Set(ds.map((r) => head(r.prompt))).size).toBe(1);
    expect(ds.every((r) => r.promptLen === 18 && words(r.prompt) === 18)).toBe(true);
  });

  it('prefix-repetition: numPrefixes distinct prefixes shared round-robin', () => {
    const ds = prefixRepetitionDataset(
      { count: 12, prefixLen: 20, suffixLen: 5, numPrefixes: 3, outputLen: 4 },
      createRng(9),
    );
    const prefixes = ds.map((r) => r.prompt.split(' ').slice(0, 20).join(' '));
    const counts = [...new Set(prefixes)].map((p) => prefixes.filter((x) => x === p).length);
    expect(counts).toEqual([4, 4, 4]);
    expect(new Set(ds.map((r) => r.prompt)).size).toBe(12);
    expect(ds.every((r) => r.promptLen === 25 && r.outputLen === 4)).toBe(true);
  });

  it('file: JSON strings or objects, reused round-robin; bad lines are named', () => {
    const text = '"hello there"\n\n{"prompt": "one two three", "max_tokens": 5}\n';
    const ds = parsePromptFile(text, 3, 9);
    expect(ds).toEqual([
      { prompt: 'hello there', promptLen: 2, outputLen: 9 },
      { prompt: 'one two three', promptLen: 3, outputLen: 5 },
      { prompt: 'hello there', promptLen: 2, outputLen: 9 },
    ]);
    expect(() => parsePromptFile('{"text": 1}', 1)).toThrow(/line 1 has no "prompt"/);
    expect(() => parsePromptFile('nope', 1)).toThrow(/line 1 is not JSON/);
    expect(() => parsePromptFile('', 1)).toThrow(/no prompts/);
  });
});

describe('runRequests', () => {
  it('never exceeds the concurrency cap and returns one result per request, in order', async () => {
    let inFlight = 0;
    let peak = 0;
    const reqs = randomDataset({ count: 12, inputLen: 3 }, createRng());
    const { results, durationMs } = await runRequests(
      reqs,
      async (r, t0) => {
        peak = Math.max(peak, ++inFlight);
        await new Promise((res) => setTimeout(res, 5));
        inFlight--;
        return {
          ok: true,
          promptLen: r.promptLen,
          outputLen: 1,
          ttftMs: 1,
          itlMs: [],
          latencyMs: 5,
          startMs: performance.now() - t0,
        };
      },
      { schedule: new Array(12).fill(0), maxConcurrency: 3 },
    );
    expect(peak).toBe(3);
    expect(results).toHaveLength(12);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(durationMs).toBeGreaterThanOrEqual(15);
  });
});
