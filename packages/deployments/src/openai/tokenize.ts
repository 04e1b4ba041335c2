/**
 * vLLM's /tokenize and /detokenize, in OpenAI's error shape: how a client counts a prompt's tokens
 * against max_model_len and the server's limits before sending it, or reads token ids back as text.
 *   POST /tokenize   { model?, prompt: string, add_special_tokens? (true: BOS as the model adds it) }
 *                  | { model?, messages: [...], add_generation_prompt? (true) }
 *                    → { count, max_model_len, tokens }  — the ids a completion / chat request would start from
 *   POST /detokenize { model?, tokens: number[] } → { prompt }
 * Neither runs the model, so neither takes tokens from the rate limits; each takes one request from the key's
 * request bucket (a tokenizer costs CPU too). A prompt over limits.maxPromptBytes, or more ids than the model's
 * context, is refused before any work; a long prompt is tokenized off the event loop (HandlerContext.encoder).
 */
import type { HttpRequestLike } from '@flotilla/core';
import { ContextLimitError, InvalidParameterError } from '../errors.js';
import type { HandlerContext, HttpChunk } from '../handler-context.js';
import { checkModelName } from '../model-name.js';
import { renderChat } from '../prepare-prompt.js';
import { checkPromptSize, checkTextBytes } from '../prompt-limits.js';
import { BodyReader } from '../validate.js';
import { readMessages } from './params.js';

function checkModel(r: BodyReader, ctx: HandlerContext): void {
  checkModelName(r.string('model'), ctx.model);
}

/** One request from the key's request bucket, no tokens: the generation routes' admission with nothing to generate. */
function admitRequest(ctx: HandlerContext): Promise<void> {
  return ctx.admit({ tokenIds: [], params: {}, promptText: '' });
}

export async function* tokenize(req: HttpRequestLike, ctx: HandlerContext): AsyncGenerator<HttpChunk> {
  const r = BodyReader.of(req.body);
  checkModel(r, ctx);
  let tokens: number[];
  if (r.has('messages')) {
    if (r.has('prompt')) throw new InvalidParameterError('prompt', 'give either prompt or messages, not both');
    const messages = readMessages(r);
    const addGenerationPrompt = r.boolean('add_generation_prompt') ?? true;
    r.rejectUnknown();
    checkPromptSize({ messages }, ctx.limits, 'messages');
    await admitRequest(ctx);
    const { text, body } = renderChat(ctx, messages, addGenerationPrompt); // BOS as in generation
    checkTextBytes(Buffer.byteLength(text, 'utf8'), ctx.limits, 'messages');
    tokens = await ctx.encoder.encode(body);
  } else {
    const prompt = r.raw('prompt');
    if (typeof prompt !== 'string')
      throw new InvalidParameterError('prompt', 'is required: a string (or give messages)');
    const addSpecial = r.boolean('add_special_tokens') ?? true;
    r.rejectUnknown();
    checkPromptSize({ text: prompt }, ctx.limits, 'prompt');
    await admitRequest(ctx);
    tokens = await ctx.encoder.encode(prompt, addSpecial ? undefined : { addBos: false });
  }
  yield { status: 200, body: { count: tokens.length, max_model_len: ctx.engine.maxModelLen, tokens } };
}

export async function* detokenize(req: HttpRequestLike, ctx: HandlerContext): AsyncGenerator<HttpChunk> {
  const r = BodyReader.of(req.body);
  checkModel(r, ctx);
  const tokens = r.raw('tokens');
  r.rejectUnknown();
  const vocab = ctx.engine.tokenizer.vocabSize;
  if (!Array.isArray(tokens) || tokens.some((t) => !Number.isInteger(t) || t < 0 || t >= vocab)) {
    throw new InvalidParameterError('tokens', `must be an array of token ids in [0, ${vocab})`);
  }
  const max = ctx.engine.maxModelLen; // no sequence of the model is longer
  if (tokens.length > max)
    throw new ContextLimitError('tokens', `is ${tokens.length} ids; the model's context is ${max} tokens`);
  await admitRequest(ctx);
  yield { status: 200, body: { prompt: ctx.engine.tokenizer.decode(tokens as number[]) } };
}
