/**
 * One streaming POST /v1/completions, timed chunk by chunk. Speaks plain OpenAI (plus `ignore_eos`, a
 * vLLM extension, only when asked), so it measures any compatible server the same way.
 */
import type { BenchRequest } from './datasets.js';
import type { RequestResult } from './request-result.js';

export interface CompletionTarget {
  /** e.g. http://127.0.0.1:8000/v1/completions */
  url: string;
  model: string;
  /** Sent as `Authorization: Bearer KEY`. Default: none. */
  apiKey?: string;
  /** Ask the server to ignore end-of-sequence so every request yields max_tokens. Default: false. */
  ignoreEos?: boolean;
  /** Per-request timeout in ms. Default: 600000. */
  timeoutMs?: number;
}

interface StreamState {
  chunks: number;
  firstMs: number;
  lastMs: number;
  itlMs: number[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
}

export async function sendCompletion(
  target: CompletionTarget,
  req: BenchRequest,
  runStartMs: number,
): Promise<RequestResult> {
  const started = performance.now();
  const base = {
    promptLen: req.promptLen,
    outputLen: 0,
    ttftMs: NaN,
    itlMs: [],
    latencyMs: 0,
    startMs: started - runStartMs,
  };
  const body = {
    model: target.model,
    prompt: req.prompt,
    max_tokens: req.outputLen,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
    ...(target.ignoreEos ? { ignore_eos: true } : {}),
  };
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream' };
  if (target.apiKey) headers.authorization = `Bearer ${target.apiKey}`;
  try {
    const res = await fetch(target.url, {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(target.timeoutMs ?? 600_000),
    });
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => '');
      return {
        ...base,
        ok: false,
        error: `HTTP ${res.status}: ${text.slice(0, 200)}`,
        latencyMs: performance.now() - started,
      };
    }
    const state: StreamState = { chunks: 0, firstMs: NaN, lastMs: NaN, itlMs: [] };
    for await (const data of sseData(res.body)) {
      if (data === '[DONE]') break;
      onChunk(state, JSON.parse(data) as CompletionChunk, performance.now() - started);
    }
    const latencyMs = performance.now() - started;
    if (state.chunks === 0) return { ...base, ok: false, error: 'the stream carried no text', latencyMs };
    return {
      ok: true,
      startMs: base.startMs,
      latencyMs,
      ttftMs: state.firstMs,
      itlMs: state.itlMs,
      promptLen: state.usage?.prompt_tokens ?? req.promptLen,
      outputLen: state.usage?.completion_tokens ?? state.chunks,
    };
  } catch (err) {
    return { ...base, ok: false, error: (err as Error).message, latencyMs: performance.now() - started };
  }
}

interface CompletionChunk {
  choices?: Array<{ text?: string }>;
  usage?: StreamState['usage'] | null;
  error?: { message?: string };
}

function onChunk(state: StreamState, chunk: CompletionChunk, atMs: number): void {
  if (chunk.error) throw new Error(chunk.error.message ?? 'error event in the stream');
  if (chunk.usage) state.usage = chunk.usage;
  const text = chunk.choices?.[0]?.text;
  // Empty chunks (role-only, usage-only) carry no token: timing them would shorten ITL and TTFT.
  if (!text) return;
  if (state.chunks === 0) state.firstMs = atMs;
  else state.itlMs.push(atMs - state.lastMs);
  state.lastMs = atMs;
  state.chunks++;
}

/** The `data:` payloads of a server-sent-event stream, one per event. */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const bytes of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(bytes, { stream: true });
    let end: number;
    while ((end = eventEnd(buffer)) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^(\r?\n){2}/, '');
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data) yield data;
    }
  }
}

function eventEnd(buffer: string): number {
  const lf = buffer.indexOf('\n\n');
  const crlf = buffer.indexOf('\r\n\r\n');
  if (lf < 0) return crlf;
  return crlf < 0 ? lf : Math.min(lf, crlf);
}

/** The first model a server lists (GET {base}/v1/models), as vLLM's benchmark picks it when --model is omitted. */
export async function firstModel(baseUrl: string, apiKey?: string): Promise<string> {
  const res = await fetch(`${baseUrl.replace(/\/+$/, '')}/v1/models`, {
    headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`GET /v1/models answered ${res.status}`);
  const body = (await res.json()) as { data?: Array<{ id?: string }> };
  const id = body.data?.[0]?.id;
  if (!id) throw new Error('GET /v1/models listed no model');
  return id;
}
