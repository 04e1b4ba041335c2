/**
 * protos/llm.proto's Embed on an LLMServer or an LLMFront (over a graph's Embedder): EmbedRequest → the same checks and engine path as HTTP's
 * /v1/embeddings (openai/embeddings.ts), errors naming the proto's fields, vectors as repeated float (the
 * engine's float32 values, exactly).
 */
import { InvalidParameterError } from '../errors.js';
import type { GenerationContext } from '../handler-context.js';
import { checkModelName } from '../model-name.js';
import { type Embedder, type EmbeddingInput, embedInputs, MAX_EMBEDDING_INPUTS } from '../openai/embeddings.js';

/** EmbedRequest as proto-loader hands it over (keepCase; repeated fields are empty when unset). */
export interface GrpcEmbedRequest {
  model?: string;
  input?: string[];
  input_token_ids?: Array<{ ids?: number[] }>;
  api_key?: string;
  dimensions?: number;
}

export async function grpcEmbed(req: GrpcEmbedRequest, ctx: GenerationContext, embedder: Embedder): Promise<unknown> {
  checkModelName(req.model, ctx.model);
  const texts = req.input ?? [];
  const idLists = req.input_token_ids ?? [];
  if (texts.length > 0 === idLists.length > 0)
    throw new InvalidParameterError('input', 'give exactly one of input or input_token_ids');
  const inputs: EmbeddingInput[] =
    texts.length > 0 ? texts.map((text) => ({ text })) : idLists.map((t) => ({ tokenIds: t.ids ?? [] }));
  if (inputs.length > MAX_EMBEDDING_INPUTS)
    throw new InvalidParameterError(
      'input',
      `at most ${MAX_EMBEDDING_INPUTS} inputs per request, got ${inputs.length}`,
    );
  inputs.forEach((x, i) => {
    if ('text' in x ? x.text.length === 0 : x.tokenIds.length === 0)
      throw new InvalidParameterError(inputs.length === 1 ? 'input' : `input[${i}]`, 'must not be empty');
  });
  const { embeddings, promptTokens } = await embedInputs(ctx, embedder, inputs, req.dimensions || undefined);
  return {
    id: `embd-${ctx.requestId}`,
    model: ctx.model.name,
    data: embeddings.map((e, index) => ({ index, embedding: Array.from(e) })),
    usage: { prompt_tokens: promptTokens, completion_tokens: 0, total_tokens: promptTokens },
  };
}
