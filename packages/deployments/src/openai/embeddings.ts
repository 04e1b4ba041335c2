/**
 * POST /v1/embeddings in OpenAI's shape: `input` as a string, an array of strings, an array of token ids or
 * an array of such arrays; `encoding_format` 'float' (default) or 'base64' (the vector's little-endian
 * float32 bytes, what the openai clients ask for by default and decode); `dimensions` only as the model's
 * own size (no Matryoshka truncation: any other value is a 400); `user` accepted. The vectors come from
 * LLMEngine.embed() (unit length, pooled as the model says). Usage counts the prompt tokens of every input.
 * The same code serves LLMServer (its engine) and LLMFront (a graph's tokenizeEmbeddingInputs and embedTokens).
 */
import type { HttpRequestLike } from '@flotilla/core';
import { InvalidParameterError } from '../errors.js';
import { toApiError } from '../generation.js';
import type { GenerationContext, HandlerContext, HttpChunk } from '../handler-context.js';
import { checkModelName } from '../model-name.js';
import { checkPromptSize } from '../prompt-limits.js';
import { BodyReader, describe } from '../validate.js';

/** Most inputs in one request (OpenAI's limit). */
export const MAX_EMBEDDING_INPUTS = 2048;

export type EmbeddingInput = { text: string } | { tokenIds: number[] };

export interface EmbeddingRequest {
  model: string | undefined;
  inputs: EmbeddingInput[];
  encodingFormat: 'float' | 'base64';
  dimensions: number | undefined;
}

export function parseEmbeddingRequest(body: unknown): EmbeddingRequest {
  const r = BodyReader.of(body);
  const inputs = readInput(r.raw('input'));
  const format = r.string('encoding_format') ?? 'float';
  if (format !== 'float' && format !== 'base64')
    throw new InvalidParameterError('encoding_format', `must be 'float' or 'base64', got ${describe(format)}`);
  const dimensions = r.integer('dimensions', { min: 1 });
  const model = r.string('model');
  r.string('user');
  r.rejectUnknown();
  return { model, inputs, encodingFormat: format, dimensions };
}

function readInput(v: unknown): EmbeddingInput[] {
  const bad = () =>
    new InvalidParameterError(
      'input',
      'must be a string, an array of strings, an array of token ids, or an array of token-id arrays',
    );
  if (v === undefined) throw new InvalidParameterError('input', 'is required');
  if (typeof v === 'string') return [text(v, 'input')];
  if (!Array.isArray(v)) throw bad();
  if (v.length === 0) throw new InvalidParameterError('input', 'must not be empty');
  if (v.length > MAX_EMBEDDING_INPUTS && typeof v[0] !== 'number')
    throw new InvalidParameterError('input', `at most ${MAX_EMBEDDING_INPUTS} inputs per request, got ${v.length}`);
  if (v.every((x) => typeof x === 'number')) return [{ tokenIds: ids(v, 'input') }];
  if (v.every((x) => typeof x === 'string')) return v.map((x, i) => text(x as string, `input[${i}]`));
  if (v.every((x) => Array.isArray(x))) return v.map((x, i) => ({ tokenIds: ids(x as unknown[], `input[${i}]`) }));
  throw bad();
}

function text(s: string, where: string): EmbeddingInput {
  if (s.length === 0) throw new InvalidParameterError(where, 'must not be empty');
  return { text: s };
}

function ids(a: unknown[], where: string): number[] {
  if (a.length === 0) throw new InvalidParameterError(where, 'must not be empty');
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0)
      throw new InvalidParameterError(where, `token ${i} must be a non-negative integer, got ${describe(x)}`);
  }
  return a as number[];
}

/** The float32 vector's bytes, little-endian, in base64 (OpenAI's encoding_format: 'base64'). */
export function embeddingBase64(v: Float32Array): string {
  const bytes = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) bytes.writeFloatLE(v[i]!, i * 4);
  return bytes.toString('base64');
}

/** What computes embeddings for the routes: LLMServer's own engine (engineEmbedder) or a graph (graph-tools.ts). */
export interface Embedder {
  /** Checks `dimensions` and tokenizes and checks every input (errors name `input` or `input[i]`); computes nothing. */
  prepare(inputs: EmbeddingInput[], dimensions: number | undefined): Promise<number[][]>;
  /** One unit vector per prepared input, in order. */
  embed(prompts: number[][]): Promise<Float32Array[]>;
}

/** The engine, its tokenizer and the limits an Embedder over a loaded model reads. */
export type EmbeddingTarget = Pick<HandlerContext, 'engine' | 'encoder' | 'limits' | 'signal'>;

/** An Embedder over a loaded model (LLMServer's routes and its graph methods). */
export function engineEmbedder(t: EmbeddingTarget): Embedder {
  return {
    async prepare(inputs, dimensions) {
      const dim = t.engine.embedding.dim;
      if (dimensions !== undefined && dimensions !== dim) {
        throw new InvalidParameterError(
          'dimensions',
          `this model does not support Matryoshka truncation: its embeddings have ${dim} dimensions, got ${dimensions}`,
        );
      }
      return prepareEmbeddingInputs(t, inputs);
    },
    async embed(prompts) {
      try {
        const results = await t.engine.embed(
          prompts.map((tokenIds) => ({ tokenIds })),
          t.signal ? { signal: t.signal } : {},
        );
        return results.map((r) => r.embedding);
      } catch (err) {
        throw toApiError(err, { prompt: 'input' });
      }
    },
  };
}

/**
 * Tokenizes and checks every input (sizes first, long texts off the event loop, then the engine's own
 * checks), in request order; errors name the input (`input` or `input[i]`).
 */
async function prepareEmbeddingInputs(t: EmbeddingTarget, inputs: EmbeddingInput[]): Promise<number[][]> {
  const out: number[][] = [];
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i]!;
    const param = inputs.length === 1 ? 'input' : `input[${i}]`;
    checkPromptSize(input, t.limits, param);
    try {
      if ('tokenIds' in input) out.push(t.engine.prepareEmbedding({ tokenIds: input.tokenIds }));
      else if (input.text.length < t.encoder.offLoopChars) out.push(t.engine.prepareEmbedding(input.text));
      else out.push(t.engine.prepareEmbedding({ tokenIds: await t.encoder.encode(input.text) }));
    } catch (err) {
      throw toApiError(err, { prompt: param });
    }
  }
  return out;
}

/**
 * The protocol-neutral part of an embeddings request (HTTP and gRPC, LLMServer and LLMFront): every input
 * prepared, the rate limiter passed (prompt tokens only), the vectors, usage filled in.
 */
export async function embedInputs(
  ctx: GenerationContext,
  embedder: Embedder,
  inputs: EmbeddingInput[],
  dimensions: number | undefined,
): Promise<{ embeddings: Float32Array[]; promptTokens: number }> {
  const prompts = await embedder.prepare(inputs, dimensions);
  const promptTokens = prompts.reduce((n, p) => n + p.length, 0);
  await ctx.admit({ tokenIds: prompts.flat(), params: { maxTokens: 0, n: 1 }, promptText: '' });
  const embeddings = await embedder.embed(prompts);
  ctx.usage.promptTokens = promptTokens;
  return { embeddings, promptTokens };
}

/** POST /v1/embeddings over whatever `embedderOf` gives for the request's context. */
export function embeddingsRoute<C extends GenerationContext>(
  embedderOf: (ctx: C) => Embedder | Promise<Embedder>,
): (req: HttpRequestLike, ctx: C) => AsyncGenerator<HttpChunk> {
  return async function* (req, ctx) {
    const r = parseEmbeddingRequest(req.body);
    checkModelName(r.model, ctx.model);
    const { embeddings, promptTokens } = await embedInputs(ctx, await embedderOf(ctx), r.inputs, r.dimensions);
    yield {
      status: 200,
      body: {
        object: 'list',
        data: embeddings.map((e, index) => ({
          object: 'embedding',
          index,
          embedding: r.encodingFormat === 'base64' ? embeddingBase64(e) : Array.from(e),
        })),
        model: ctx.model.name,
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
      },
    };
  };
}

/** LLMServer's POST /v1/embeddings, over its own engine. */
export const embeddings = embeddingsRoute<HandlerContext>(engineEmbedder);
