/**
 * POST /v1/responses — OpenAI's Responses API as vLLM serves it, on the same path as chat (the
 * generation backend: the chat template, the checks, the rate limiter; LLMServer's engine or, behind
 * LLMFront, the graph the request's `model` names):
 *
 * - Request: `input` as text or a list of items — messages ({ role, content } with text or
 *   input_text/output_text parts; `type: 'message'` optional), `function_call` items (an earlier call of
 *   the assistant) and `function_call_output` items (its result, a tool message); `instructions` (a system
 *   message first); `max_output_tokens`, `temperature`, `top_p`; `text.format` (text, json_object, or
 *   json_schema through the same guided decoding as response_format); function `tools` in the Responses
 *   shape ({ type: 'function', name, parameters, ... }) with `tool_choice` and `parallel_tool_calls`, read
 *   by tools.ts's parser; `metadata` and `user` echoed. Nothing is stored: `store` true,
 *   `previous_response_id` and `background` are refused (400); the response says `store: false`.
 * - Response: a `response` object whose `output` holds a `message` item with one `output_text` part (the
 *   openai client's `output_text` joins them) and a `function_call` item per call; status 'completed', or
 *   'incomplete' with incomplete_details.reason 'max_output_tokens' at the length limit; usage as
 *   input/output tokens.
 * - Streamed: semantic server-sent events (`event: TYPE` + `data: {..., type, sequence_number}`):
 *   response.created, response.in_progress, response.output_item.added, response.content_part.added,
 *   response.output_text.delta..., response.output_text.done, response.content_part.done,
 *   response.output_item.done (function calls: output_item.added, function_call_arguments.delta/.done,
 *   output_item.done), then response.completed (or response.incomplete).
 *
 * Files: responses-request.ts (body → ResponsesRequest; `input` items in responses-input.ts),
 * responses-output.ts (output items, stream events, the response object); this file runs the
 * generation and writes the answer, whole or as server-sent events.
 */
import { randomBytes } from 'node:crypto';
import type { HttpRequestLike } from '@flotilla/core';
import type { RequestOutput } from '@flotilla/engine';
import { collectGeneration, UsageTracker } from '../generation.js';
import { SSE_HEADERS, type GenerationContext, type HttpChunk } from '../handler-context.js';
import { checkModelName } from '../model-name.js';
import { openAiError } from './routes.js';
import { parseResponsesRequest } from './responses-request.js';
import { OutputBuilder, outputReader, type ResponseState, responseObject } from './responses-output.js';

export { parseResponsesRequest, type ResponsesRequest } from './responses-request.js';

function sseEvent(ev: Record<string, unknown>): string {
  return `event: ${ev.type as string}\ndata: ${JSON.stringify(ev)}\n\n`;
}

export async function* responses(req: HttpRequestLike, ctx: GenerationContext): AsyncGenerator<HttpChunk> {
  const r = parseResponsesRequest(req.body);
  checkModelName(r.model, ctx.model);
  const prepared = await ctx.backend.prepare(r.spec);
  ctx.promptText = prepared.promptText;
  await ctx.admit(prepared);
  const stream = ctx.backend.start(prepared, r.spec.names);
  const state: ResponseState = {
    id: `resp_${randomBytes(12).toString('hex')}`,
    createdAt: Math.floor(Date.now() / 1000),
    model: ctx.model.name,
    status: 'in_progress',
    output: [],
    usage: null,
  };
  const reader = outputReader(r);
  const builder = new OutputBuilder();
  state.output = builder.items;
  const statusOf = (reason: string | null) => (reason === 'length' ? 'incomplete' : 'completed');
  if (!r.stream) {
    const { samples, usage } = await collectGeneration(stream, 1);
    Object.assign(ctx.usage, usage);
    const s = samples[0]!;
    for (const ev of [...reader.push(s.text), ...reader.end()]) builder.apply(ev);
    state.status = statusOf(s.finishReason);
    builder.finish(state.status);
    state.usage = { input: usage.promptTokens, output: usage.completionTokens };
    yield { status: 200, body: responseObject(r, state) };
    return;
  }
  yield { status: 200, headers: SSE_HEADERS, streamErrorFormat: 'openai-sse' };
  let seq = 0;
  const emit = (ev: Record<string, unknown>) => sseEvent({ ...ev, sequence_number: seq++ });
  yield emit({ type: 'response.created', response: responseObject(r, { ...state, output: [] }) });
  yield emit({ type: 'response.in_progress', response: responseObject(r, { ...state, output: [] }) });
  const usage = new UsageTracker();
  let last: RequestOutput | undefined;
  try {
    for await (const out of stream) {
      await undefined; // as in routes.ts: formatting off the step loop's critical path
      usage.add(out);
      ctx.usage.promptTokens = usage.promptTokens;
      ctx.usage.completionTokens = usage.completionTokens;
      last = out;
      const events = [...reader.push(out.text), ...(out.finished ? reader.end() : [])];
      for (const ev of events) for (const e of builder.apply(ev)) yield emit(e);
    }
  } catch (err) {
    // the status line is gone: OpenAI's in-band error event, then the end
    const e = openAiError(err).body.error;
    yield emit({ type: 'error', code: e.code, message: e.message, param: e.param });
    return;
  }
  state.status = statusOf(last?.finishReason ?? null);
  for (const e of builder.finish(state.status)) yield emit(e);
  state.usage = { input: usage.promptTokens, output: usage.completionTokens };
  const done = state.status === 'completed' ? 'response.completed' : 'response.incomplete';
  yield emit({ type: done, response: responseObject(r, state) });
}
