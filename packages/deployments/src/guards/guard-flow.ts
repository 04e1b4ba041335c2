/**
 * How a guard's two hooks — a prompt check and an output filter — are applied to each way a generation
 * is requested: an HTTP request for LLMServer's OpenAI/TGI API (the body's prompt fields, then JSON
 * replies and server-sent events; http-rewrite.ts), and llm.proto-shaped requests, replies and streams
 * (gRPC and handles). Shared by the guard stages (guard-stage.ts: a deployment in front of a graph) and
 * by LLMServer's built-in guard (its `pii` option), so both behave the same.
 */
import { BadRequestError, type HttpRequestLike } from '@flotilla/core';
import { InvalidParameterError, LLMApiError } from '../errors.js';
import type { HttpChunk } from '../handler-context.js';
import { openAiError } from '../openai/routes.js';
import { tgiError } from '../tgi/routes.js';
import { apiOf, checkRequestBody, ResponseRewriter } from './http-rewrite.js';
import type { OutputFilter } from './output-filter.js';

export interface GuardHooks {
  /** The prompt text to send on, or a thrown LLMApiError (e.g. 400) to refuse the request. */
  checkPrompt(text: string, param: string): Promise<string>;
  /** A filter for one choice's generated text; null to pass outputs unchanged. */
  outputFilter(): OutputFilter | null;
}

interface StreamChunk {
  index?: number;
  text?: string;
  finished?: boolean;
  finish_reason?: string;
}

/** An HTTP request through the guard: `next` serves the (checked) request; its reply is filtered. */
export async function* guardHttp(
  req: HttpRequestLike,
  hooks: GuardHooks,
  next: (req: HttpRequestLike) => AsyncIterable<HttpChunk>,
): AsyncGenerator<HttpChunk> {
  const api = req.bodyError === undefined ? apiOf(req.method, req.path) : 'none';
  let body: unknown;
  try {
    body = await checkRequestBody(api, req.body, (text, param) => hooks.checkPrompt(text, param));
  } catch (err) {
    yield api === 'tgi' ? tgiError(err) : openAiError(err);
    return;
  }
  // /v1/responses replies are not rewritten (their event shapes are not the rewriter's): a guard that
  // filters outputs refuses them rather than let generated text past it unchecked.
  if (api === 'openai-input' && req.path.replace(/\/+$/, '') === '/v1/responses' && hooks.outputFilter()) {
    yield openAiError(
      new InvalidParameterError(
        'model',
        'the Responses API is not served behind an output filter; use /v1/chat/completions',
      ),
    );
    return;
  }
  const rewriter =
    (api === 'openai' || api === 'tgi') && hooks.outputFilter()
      ? new ResponseRewriter(api, () => hooks.outputFilter()!)
      : null;
  let head = true;
  for await (const chunk of next(body === req.body ? req : { ...req, body })) {
    if (!rewriter) {
      yield chunk;
      continue;
    }
    if (head && typeof chunk !== 'string') {
      head = false;
      if (chunk.status !== 200 || chunk.body === undefined) {
        yield chunk;
        continue;
      }
      const r = await rewriter.rewriteBody(chunk.body);
      yield { ...chunk, status: r.status ?? chunk.status, body: r.body };
      continue;
    }
    head = false;
    if (typeof chunk === 'string') {
      const out = await rewriter.rewriteEvent(chunk);
      if (out !== '') yield out;
    } else yield chunk;
  }
}

/**
 * An llm.proto-shaped request with its `prompt` and `messages[].content` checked. A refusal becomes
 * core's BadRequestError (400, gRPC INVALID_ARGUMENT) carrying the guard error's code, param and details.
 */
export async function guardGrpcRequest(
  request: Record<string, unknown>,
  hooks: GuardHooks,
): Promise<Record<string, unknown>> {
  if (typeof request !== 'object' || request === null) throw new BadRequestError('the request must be an object');
  try {
    const out = { ...request };
    if (typeof out.prompt === 'string') out.prompt = await hooks.checkPrompt(out.prompt, 'prompt');
    if (Array.isArray(out.messages)) {
      out.messages = await Promise.all(
        out.messages.map(async (m: { content?: unknown }) =>
          typeof m?.content === 'string' ? { ...m, content: await hooks.checkPrompt(m.content, 'messages') } : m,
        ),
      );
    }
    return out;
  } catch (err) {
    if (err instanceof LLMApiError) {
      const { code, param, status } = err;
      const details = Object.fromEntries(
        Object.entries(err).filter(([k]) => !['code', 'param', 'status', 'type'].includes(k)),
      );
      throw new BadRequestError(err.message, { code, param, status, ...details });
    }
    throw err;
  }
}

/** A whole llm.proto reply with each choice's text filtered. */
export async function guardGrpcReply(reply: unknown, hooks: GuardHooks): Promise<unknown> {
  const r = reply as { choices?: Array<{ text?: string; finish_reason?: string }> };
  if (!Array.isArray(r?.choices) || !hooks.outputFilter()) return reply;
  const choices = await Promise.all(
    r.choices.map(async (c) => {
      const f = hooks.outputFilter();
      if (!f || typeof c?.text !== 'string') return c;
      const text = (await f.push(c.text)) + (f.blocked ? '' : await f.end());
      return f.blocked ? { ...c, text, finish_reason: 'content_filter' } : { ...c, text };
    }),
  );
  return { ...r, choices };
}

/** An llm.proto stream with each choice's text filtered (a blocked choice ends with 'content_filter'). */
export async function* guardGrpcStream(stream: AsyncIterable<unknown>, hooks: GuardHooks): AsyncGenerator<unknown> {
  const filters = new Map<number, OutputFilter | null>();
  for await (const item of stream) {
    const chunk = item as StreamChunk;
    const index = chunk.index ?? 0;
    if (!filters.has(index)) filters.set(index, hooks.outputFilter());
    const f = filters.get(index);
    if (!f) {
      yield chunk;
      continue;
    }
    if (f.blocked) continue; // that choice already ended with 'content_filter'
    let text = await f.push(chunk.text ?? '');
    if (!f.blocked && chunk.finished) text += await f.end();
    if (f.blocked) yield { ...chunk, text, token_ids: [], finished: true, finish_reason: 'content_filter' };
    else yield { ...chunk, text };
  }
}
