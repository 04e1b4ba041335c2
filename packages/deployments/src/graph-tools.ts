/**
 * LLMFront's embeddings and tokenizer over a generation graph: the Embedder (openai/embeddings.ts) and
 * TextTokenizer (openai/tokenize.ts) that LLMServer's own handlers read, here over the graph's optional
 * methods (graph.ts). A graph whose GraphInfo does not declare them is refused as vLLM refuses a model
 * that does not serve the API (400 invalid_request_error, UnsupportedTaskError), naming the model. The
 * front's own limits (prompt bytes) are checked before the graph is asked; the graph checks its model's.
 */
import { UnsupportedTaskError } from './errors.js';
import type { GraphClient } from './graph-client.js';
import type { GraphInfo } from './graph.js';
import type { ResolvedLimits } from './llm-server-options.js';
import type { Embedder } from './openai/embeddings.js';
import type { TextTokenizer } from './openai/tokenize.js';
import { checkPromptSize } from './prompt-limits.js';

/** The request as the graph calls carry it: its id and the graph's model it names (GraphRequest.model). */
export interface GraphCall {
  requestId: string;
  /** The name the request reached the graph by, for errors. */
  name: string;
  model?: string;
}

export function graphEmbedder(client: GraphClient, info: GraphInfo, limits: ResolvedLimits, call: GraphCall): Embedder {
  if (info.embeddings !== true)
    throw new UnsupportedTaskError(`The model '${call.name}' does not support the Embeddings API`);
  const model = call.model !== undefined ? { model: call.model } : {};
  return {
    prepare(inputs, dimensions) {
      inputs.forEach((input, i) => {
        checkPromptSize(input, limits, inputs.length === 1 ? 'input' : `input[${i}]`);
      });
      return client.embedInputs({
        requestId: call.requestId,
        inputs,
        ...(dimensions !== undefined ? { dimensions } : {}),
        ...model,
      });
    },
    embed: (tokenIds) => client.embed({ requestId: call.requestId, tokenIds, ...model }),
  };
}

export function graphTokenizer(client: GraphClient, info: GraphInfo, call: GraphCall): TextTokenizer {
  if (info.tokenizer !== true)
    throw new UnsupportedTaskError(`The model '${call.name}' does not support /tokenize and /detokenize`);
  const model = call.model !== undefined ? { model: call.model } : {};
  return {
    tokenize: (request) => client.tokenizeText({ requestId: call.requestId, request, ...model }),
    detokenize: (tokens) => client.detokenize({ requestId: call.requestId, tokens, ...model }),
  };
}
