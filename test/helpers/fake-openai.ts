/**
 * A tiny real OpenAI-compatible completions server (fastify, SSE) for testing `serve bench` against a
 * server other than Flotilla's: it streams `max_tokens` one-word tokens `tokenDelayMs` apart, honours
 * stream_options.include_usage, and records what it received.
 */
import Fastify from 'fastify';

export interface FakeOpenAi {
  url: string;
  received: Array<Record<string, unknown>>;
  /** Most requests seen in flight at once. */
  peakConcurrency: number;
  close(): Promise<void>;
}

export async function startFakeOpenAi(
  opts: { tokenDelayMs?: number; firstTokenDelayMs?: number; model?: string } = {},
): Promise<FakeOpenAi> {
  const app = Fastify();
  const state: FakeOpenAi = { url: '', received: [], peakConcurrency: 0, close: () => app.close() };
  let inFlight = 0;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  app.get('/v1/models', async () => ({ object: 'list', data: [{ id: opts.model ?? 'fake-model', object: 'model' }] }));
  app.post('/v1/completions', async (req, reply) => {
    const body = req.body as { prompt: string; max_tokens: number; stream_options?: { include_usage?: boolean } };
    state.received.push(body as Record<string, unknown>);
    state.peakConcurrency = Math.max(state.peakConcurrency, ++inFlight);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const send = (data: unknown) => res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
    await sleep(opts.firstTokenDelayMs ?? 5);
    for (let i = 0; i < body.max_tokens; i++) {
      if (i > 0) await sleep(opts.tokenDelayMs ?? 2);
      send({
        id: 'cmpl-1',
        object: 'text_completion',
        choices: [{ index: 0, text: ` w${i}`, finish_reason: i === body.max_tokens - 1 ? 'length' : null }],
      });
    }
    const promptTokens = body.prompt.split(/\s+/).filter(Boolean).length;
    if (body.stream_options?.include_usage) {
      send({
        id: 'cmpl-1',
        object: 'text_completion',
        choices: [],
        usage: { prompt_tokens: promptTokens, completion_tokens: body.max_tokens },
      });
    }
    send('[DONE]');
    res.end();
    inFlight--;
  });
  state.url = await app.listen({ host: '127.0.0.1', port: 0 });
  return state;
}
