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
 * The same handlers serve LLMServer (its own tokenizer, engineTokenizer) and LLMFront (a graph's tokenizeText
 * and detokenizeTokens, graph-tools.ts).
 */
import type { ChatMessage } from '@flotilla/engine';
import type { HttpRequestLike } from '@flotilla/core';
import { ContextLimitError, InvalidParameterError } from '../errors.js';
import type { GenerationContext, HandlerContext, HttpChunk } from '../handler-context.js';
import { checkModelName } from '../model-name.js';
import { renderChat } from '../prepare-prompt.js';
import { checkPromptSize, checkTextBytes } from '../prompt-limits.js';
import { BodyReader } from '../validate.js';
import { readMessages } from './params.js';

/** A /tokenize body, checked (plain data: it crosses handles to a graph). */
export type TokenizeRequest =
  | { prompt: string; addSpecialTokens: boolean }
  | { messages: ChatMessage[]; addGenerationPrompt: boolean };

/** What tokenizes for the routes: LLMServer's own model (engineTokenizer) or a graph's (graph-tools.ts). */
export interface TextTokenizer {
  /** The ids, and the context of the model that made them (max_model_len in the answer). */
  tokenize(req: TokenizeRequest): Promise<{ tokens: number[]; maxModelLen: number }>;
  /** The text of ids already checked to be non-negative integers within the context; checks the vocabulary. */
  detokenize(tokens: number[]): Promise<string>;
}

/** A TextTokenizer over a loaded model (LLMServer's routes and its graph methods). */
export function engineTokenizer(t: Pick<HandlerContext, 'engine' | 'encoder' | 'limits'>): TextTokenizer {
  return {
    async tokenize(req) {
      const maxModelLen = t.engine.maxModelLen;
      if ('messages' in req) {
        const { text, body } = renderChat(t, req.messages, req.addGenerationPrompt); // BOS as in generation
        checkTextBytes(Buffer.byteLength(text, 'utf8'), t.limits, 'messages');
        return { tokens: await t.encoder.encode(body), maxModelLen };
      }
      return {
        tokens: await t.encoder.encode(req.prompt, req.addSpecialTokens ? undefined : { addBos: false }),
        maxModelLen,
      };
    },
    async detokenize(tokens) {
      const vocab = t.engine.tokenizer.vocabSize;
      if (tokens.some((id) => id >= vocab))
        throw new InvalidParameterError('tokens', `must be an array of token ids in [0, ${vocab})`);
      return t.engine.tokenizer.decode(tokens);
    },
  };
}

/** One request from the key's request bucket, no tokens: the generation routes' admission with nothing to generate. */
function admitRequest(ctx: GenerationContext): Promise<void> {
  return ctx.admit({ tokenIds: [], params: {}, promptText: '' });
}

/** The body's request, checked against the limits' prompt size (before any tokenizing). */
function readTokenize(r: BodyReader, ctx: GenerationContext): TokenizeRequest {
  if (r.has('messages')) {
    if (r.has('prompt')) throw new InvalidParameterError('prompt', 'give either prompt or messages, not both');
    const messages = readMessages(r);
    const addGenerationPrompt = r.boolean('add_generation_prompt') ?? true;
    r.rejectUnknown();
    checkPromptSize({ messages }, ctx.limits, 'messages');
    return { messages, addGenerationPrompt };
  }
  const prompt = r.raw('prompt');
  if (typeof prompt !== 'string') throw new InvalidParameterError('prompt', 'is required: a string (or give messages)');
  const addSpecialTokens = r.boolean('add_special_tokens') ?? true;
  r.rejectUnknown();
  checkPromptSize({ text: prompt }, ctx.limits, 'prompt');
  return { prompt, addSpecialTokens };
}

/** POST /tokenize over whatever `tokenizerOf` gives for the request's context. */
export function tokenizeRoute<C extends GenerationContext>(
  tokenizerOf: (ctx: C) => TextTokenizer | Promise<TextTokenizer>,
): (req: HttpRequestLike, ctx: C) => AsyncGenerator<HttpChunk> {
  return async function* (req, ctx) {
    const r = BodyReader.of(req.body);
    checkModelName(r.string('model'), ctx.model);
    const request = readTokenize(r, ctx);
    const tokenizer = await tokenizerOf(ctx);
    await admitRequest(ctx);
    const { tokens, maxModelLen } = await tokenizer.tokenize(request);
    yield { status: 200, body: { count: tokens.length, max_model_len: maxModelLen, tokens } };
  };
}

/** POST /detokenize over whatever `tokenizerOf` gives for the request's context. */
export function detokenizeRoute<C extends GenerationContext>(
  tokenizerOf: (ctx: C) => TextTokenizer | Promise<TextTokenizer>,
  vocabSizeOf: (ctx: C) => number | undefined = () => undefined,
): (req: HttpRequestLike, ctx: C) => AsyncGenerator<HttpChunk> {
  return async function* (req, ctx) {
    const r = BodyReader.of(req.body);
    checkModelName(r.string('model'), ctx.model);
    const tokens = r.raw('tokens');
    r.rejectUnknown();
    const vocab = vocabSizeOf(ctx) ?? Number.MAX_SAFE_INTEGER; // a graph's vocabulary is checked by the graph
    if (!Array.isArray(tokens) || tokens.some((t) => !Number.isInteger(t) || t < 0 || t >= vocab)) {
      const range = vocab === Number.MAX_SAFE_INTEGER ? 'non-negative integers' : `token ids in [0, ${vocab})`;
      throw new InvalidParameterError('tokens', `must be an array of ${range}`);
    }
    const max = ctx.backend.maxModelLen; // no sequence of the model is longer
    if (tokens.length > max)
      throw new ContextLimitError('tokens', `is ${tokens.length} ids; the model's context is ${max} tokens`);
    const tokenizer = await tokenizerOf(ctx);
    await admitRequest(ctx);
    yield { status: 200, body: { prompt: await tokenizer.detokenize(tokens as number[]) } };
  };
}

/** LLMServer's POST /tokenize and /detokenize, over its own model. */
export const tokenize = tokenizeRoute<HandlerContext>(engineTokenizer);
export const detokenize = detokenizeRoute<HandlerContext>(engineTokenizer, (ctx) => ctx.engine.tokenizer.vocabSize);
