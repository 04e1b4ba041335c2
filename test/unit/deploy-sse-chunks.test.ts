/** The prebuilt SSE chunks of ChunkWriter are byte for byte what the object-building path writes. */
import { describe, expect, it } from 'vitest';
import type { RequestOutput, Tokenizer } from '@flotilla/engine';
import { sse } from '../../packages/deployments/src/handler-context.js';
import {
  chatChunk,
  ChunkWriter,
  completionChunk,
  type ResponseMeta,
} from '../../packages/deployments/src/openai/responses.js';
import type { OpenAiRequest } from '../../packages/deployments/src/openai/params.js';

const output = (index: number, text: string, finished = false): RequestOutput => ({
  requestId: 'r',
  index,
  text,
  tokenIds: [1],
  cumulativeText: text,
  finished,
  finishReason: finished ? 'length' : null,
  stopReason: null,
  usage: { promptTokens: 3, completionTokens: 1 },
});

function meta(kind: 'completion' | 'chat', id = 'cmpl-1f2e"\\x', model = 'stories "260K" ünï'): ResponseMeta {
  const req = { kind, logprobs: undefined } as OpenAiRequest;
  return { id, created: 1_700_000_000, model, tok: {} as Tokenizer, req };
}

const texts = [' hello', '', '"quoted"\\', 'line\nbreak\ttab', 'ünïcödé 😀', '\u0001\u2028', '</script>'];

describe('ChunkWriter', () => {
  it('writes completion chunks exactly as sse(completionChunk(...))', () => {
    const m = meta('completion');
    const w = new ChunkWriter(m);
    const fast: number[] = [];
    const slow: number[] = [];
    for (const [i, text] of texts.entries()) {
      for (const finished of [false, true]) {
        const out = output(i % 3, text, finished);
        expect(w.completion(out, fast)).toBe(sse(completionChunk(m, out, slow)));
      }
    }
    expect(fast).toEqual(slow);
  });

  it('writes chat chunks exactly as sse(chatChunk(...)), the first with the role', () => {
    const m = meta('chat', 'chatcmpl-9');
    const w = new ChunkWriter(m);
    for (const [i, text] of texts.entries()) {
      for (const first of [true, false]) {
        for (const finished of [false, true]) {
          const out = output(i % 2, text, finished);
          expect(w.chat(out, first)).toBe(sse(chatChunk(m, out, first)));
        }
      }
    }
  });

  it('every line parses as JSON with the fields in order', () => {
    const w = new ChunkWriter(meta('completion'));
    const line = w.completion(output(2, 'a"b'), []);
    expect(line.startsWith('data: ') && line.endsWith('\n\n')).toBe(true);
    expect(Object.keys(JSON.parse(line.slice(6)))).toEqual(['id', 'object', 'created', 'model', 'choices']);
  });
});
