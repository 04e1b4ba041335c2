/**
 * One load level of the HTTP-vs-engine benchmark: `streams` concurrent streaming requests of `maxTokens`
 * tokens each, either straight on LLMEngine or as SSE through the HTTP proxy; tokens/s over the wall
 * time of the level and the time to first token of every stream.
 */
import http from 'node:http';
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
  await Promise.all(
    Array.from({ length: streams }, async (_, i) => {
      const start = performance.now();
      let first = true;
      for await (const out of engine.generate(prompt(i), { maxTokens, ignoreEos: true, temperature: 0.8, seed: i })) {
        if (first && out.tokenIds.length > 0) {
          ttft.push(performance.now() - start);
          first = false;
        }
        tokens += out.tokenIds.length;
      }
    }),
  );
  return finish('engine', streams, tokens, performance.now() - t0, ttft);
}

/**
 * SSE over node:http rather than fetch: undici's web streams cost the client about as much CPU per token
 * as the proxy spends, and on a small machine the client's CPU is taken from the server.
 */
export async function httpLevel(url: string, streams: number, maxTokens: number): Promise<LevelResult> {
  const t0 = performance.now();
  const ttft: number[] = [];
  let tokens = 0;
  const agent = new http.Agent({ keepAlive: true, maxSockets: streams });
  await Promise.all(
    Array.from({ length: streams }, async (_, i) => {
      const start = performance.now();
      const body = JSON.stringify({
        prompt: prompt(i),
        max_tokens: maxTokens,
        ignore_eos: true,
        temperature: 0.8,
        seed: i,
        stream: true,
        stream_options: { include_usage: true },
      });
      const text = await new Promise<string>((resolve, reject) => {
        const req = http.request(
          `${url}/v1/completions`,
          {
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          },
          (res) => {
            res.setEncoding('utf8');
            let all = '';
            let first = true;
            res.on('data', (chunk: string) => {
              all += chunk;
              // The SSE head comes before any token: time to first token is the first chunk with text.
              if (first && all.includes('"text"')) {
                ttft.push(performance.now() - start);
                first = false;
              }
            });
            res.on('end', () =>
              res.statusCode === 200 ? resolve(all) : reject(new Error(`HTTP ${res.statusCode}: ${all}`)),
            );
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(body);
      });
      const usage = /"completion_tokens":(\d+)/.exec(text.slice(text.lastIndexOf('"usage"')));
      tokens += Number(usage?.[1] ?? 0);
    }),
  );
  agent.destroy();
  return finish('http', streams, tokens, performance.now() - t0, ttft);
}

function finish(
  path: LevelResult['path'],
  streams: number,
  tokens: number,
  wallMs: number,
  ttftMs: number[],
): LevelResult {
  return { path, streams, tokens, wallMs, tokensPerS: (tokens * 1000) / wallMs, ttftMs };
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
