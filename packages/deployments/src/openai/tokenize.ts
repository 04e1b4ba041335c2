/**
 * vLLM's /tokenize and /detokenize, in OpenAI's error shape: how a client counts a prompt's tokens
 * against max_model_len and the server's limits before sending it, or reads token ids back as text.
 *   POST /tokenize   { model?, prompt: string, add_special_tokens? (true: BOS as the model adds it) }
 *                  | { model?, messages: [...], add_generation_prompt? (true) }
 *                    → { count, max_model_len, tokens }  — the ids a completion / chat request would start from
 *   POST /detokenize { model?, tokens: number[] } → { prompt }
 * Neither runs the model, so neither counts against the generation rate limits.
 */
import type { HttpRequestLike } from '@flotilla/core';
import { InvalidParameterError, ModelNotFoundError } from '../errors.js';
import type { HandlerContext, HttpChunk } from '../handler-context.js';
import { BodyReader } from '../validate.js';
import { readMessages } from './params.js';

function checkModel(r: BodyReader, ctx: HandlerContext): void {
  const model = r.string('model');
  if (model !== undefined && model !== ctx.model.name) {
    throw new ModelNotFoundError(
      `The model '${model}' does not exist; this server serves '${ctx.model.name}'.`,
      'model',
    );
  }
}

export async function* tokenize(req: HttpRequestLike, ctx: HandlerContext): AsyncGenerator<HttpChunk> {
  const r = BodyReader.of(req.body);
  checkModel(r, ctx);
  const tok = ctx.engine.tokenizer;
  let tokens: number[];
  if (r.has('messages')) {
    if (r.has('prompt')) throw new InvalidParameterError('prompt', 'give either prompt or messages, not both');
    const messages = readMessages(r);
    const addGenerationPrompt = r.boolean('add_generation_prompt') ?? true;
    r.rejectUnknown();
    let text: string;
    try {
      text = ctx.engine.chatTemplate.render(messages, { addGenerationPrompt });
    } catch (err) {
      throw new InvalidParameterError('messages', (err as Error).message);
    }
    const bos = ctx.engine.chatTemplate.bosToken; // a template that spells out BOS gets the real token, as in generation
    tokens = tok.encode(bos && text.startsWith(bos) ? text.slice(bos.length) : text);
  } else {
    const prompt = r.raw('prompt');
    if (typeof prompt !== 'string')
      throw new InvalidParameterError('prompt', 'is required: a string (or give messages)');
    const addSpecial = r.boolean('add_special_tokens') ?? true;
    r.rejectUnknown();
    tokens = addSpecial ? tok.encode(prompt) : tok.encode(prompt, { addBos: false });
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
  yield { status: 200, body: { prompt: ctx.engine.tokenizer.decode(tokens as number[]) } };
}
