/**
 * One load level of the HTTP-vs-engine benchmark: `streams` concurrent streaming requests of `maxTokens`
 * tokens each, either straight on LLMEngine or as SSE through the HTTP proxy; tokens/s over the wall
 * time of the level and the time to first token of every stream.
 */
import type { LLMEngine } from '@flotilla/engine';

export interface LevelResult {
  path: 'engine' | 'http';
  streams: number;
  tokens: number;
  wallMs: number;
  tokensPerS: number;
  ttftMs: number[];
}

const prompt = (i: number) => `Request ${i}: the quick brown fox jumps over the lazy dog`;

export async function engineLevel(engine: LLMEngine, streams: number, maxTokens: number): Promise<LevelResult> {
  const t0 = performance.now();
  const ttft: number[] = [];
  let tokens = 0;
  await Promise.all(Array.from({ length: streams }, async (_, i) => {
    const start = performance.now();
    let first = true;
    for await (const out of engine.generate(prompt(i), { maxTokens, ignoreEos: true, temperature: 0.8, seed: i })) {
      if (first && out.tokenIds.length > 0) { ttft.push(performance.now() - start); first = false; }
      tokens += out.tokenIds.length;
    }
  }));
  return finish('engine', streams, tokens, performance.now() - t0, ttft);
}

export async function httpLevel(url: string, streams: number, maxTokens: number): Promise<LevelResult> {
  const t0 = performance.now();
  const ttft: number[] = [];
  let tokens = 0;
  await Promise.all(Array.from({ length: streams }, async (_, i) => {
    const start = performance.now();
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: prompt(i), max_tokens: maxTokens, ignore_eos: true, temperature: 0.8, seed: i, stream: true,
        stream_options: { include_usage: true } }),
    });
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
    const decoder = new TextDecoder();
    let text = '';
    let first = true;
    const reader = res.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      // The SSE head comes before any token: time to first token is the first chunk with text.
      if (first && text.includes('"text"')) { ttft.push(performance.now() - start); first = false; }
    }
    const usage = /"completion_tokens":(\d+)/.exec(text.slice(text.lastIndexOf('"usage"')));
    tokens += Number(usage?.[1] ?? 0);
  }));
  return finish('http', streams, tokens, performance.now() - t0, ttft);
}

function finish(path: LevelResult['path'], streams: number, tokens: number, wallMs: number, ttftMs: number[]): LevelResult {
  return { path, streams, tokens, wallMs, tokensPerS: (tokens * 1000) / wallMs, ttftMs };
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
