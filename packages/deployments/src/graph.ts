/**
 * GenerationGraph: what a generation graph's ingress implements so that LLMFront (llm-front.ts) can serve
 * it over OpenAI (/v1/completions, /v1/chat/completions, /v1/models), TGI (/generate, /generate_stream,
 * /info) and protos/llm.proto. LLMServer, SpeculativePipeline, HybridRouter and ResponseCache implement it;
 * so can a user's own deployment class. Every type here crosses handles (structured clone): plain data.
 *
 * A request is answered in two calls, so that the front can check and charge it before anything runs:
 *   1. `tokenizePrompt(req)`: the graph tokenizes the prompt (chat messages through its model's chat
 *      template), checks the parameters against its model and says what it can't do, and returns what
 *      the front needs to admit the request (token counts). Nothing generates yet.
 *   2. `generateStream({ ...req, prepared })`: the deltas, each sample's tokens as they come, the last one
 *      of each sample with its finish reason; usage on every delta; logprobs when asked and available.
 *
 * Errors: a parameter the graph refuses is an InvalidParameterError (errors.ts, registered for the wire)
 * naming the field as `req.names` spells it (the API's own name: `logprobs`, `top_n_tokens`, ...), never a
 * silent difference; the engine's own errors (codes E_SAMPLING_PARAMS, E_CONTEXT_LENGTH, ...) may be thrown
 * as they are, and the front names their fields the same way (generation.ts toApiError).
 */
import type { ChatMessage, SamplingParams, TokenLogprob, ToolDefinition } from '@flotilla/engine';
import type { ParamNames } from './generation.js';
import type { EmbeddingInput } from './openai/embeddings.js';
import type { TokenizeRequest } from './openai/tokenize.js';

/** The methods the front calls on a graph's handle (they must exist under these names). */
export const GRAPH_METHODS = {
  info: 'graphInfo',
  tokenize: 'tokenizePrompt',
  generate: 'generateStream',
  /** Optional (GraphInfo.embeddings): embedding inputs → token ids, checked; computes nothing. */
  embedInputs: 'tokenizeEmbeddingInputs',
  /** Optional (GraphInfo.embeddings): checked token ids → unit vectors. */
  embed: 'embedTokens',
  /** Optional (GraphInfo.tokenizer): vLLM's /tokenize over the graph's model. */
  tokenizeText: 'tokenizeText',
  /** Optional (GraphInfo.tokenizer): vLLM's /detokenize over the graph's model. */
  detokenize: 'detokenizeTokens',
} as const;

/**
 * A graph class's `static internalMethods` (core: callable through handles, refused to a proxy's client):
 * the front has already checked keys, limits and the request by the time it calls these.
 */
export const GRAPH_INTERNAL_METHODS: readonly string[] = Object.values(GRAPH_METHODS);

/** A prompt: text, chat messages (the model's template applies), or token ids. */
export type GraphPrompt =
  | { text: string }
  | { messages: ChatMessage[]; tools?: readonly ToolDefinition[] }
  | { tokenIds: number[] };

export interface GraphRequest {
  /** Unique per request (the front's x-request-id); a graph may use it as its engine request id. */
  requestId: string;
  prompt: GraphPrompt;
  /** Engine-level parameters (camelCase, engine/sampling-params.ts); not yet checked against the model. */
  params: SamplingParams;
  /** The API's names of the fields, for errors (`{ logprobs: 'top_logprobs', maxTokens: 'max_new_tokens' }`). */
  names: ParamNames;
  /** max_tokens when `params.maxTokens` is absent. Default: what is left of the context. */
  defaultMaxTokens?: number;
  /**
   * Logprobs the API shows when available but the client did not ask for (TGI's per-token `logprob`): a
   * graph that has logprobs treats it as `params.logprobs`; one that has none ignores it (TGI then shows 0).
   */
  optionalLogprobs?: number;
  /** Put `tokens` (text bytes and special flags) on the deltas: the front has no tokenizer of its own. */
  tokenInfo?: boolean;
  /**
   * A model among the graph's GraphInfo.models (a multiplexed graph's model or adapter) that the request
   * names; the front also makes it the call's multiplexedModelId, so the router prefers a replica holding
   * it. Absent: the graph's own model.
   */
  model?: string;
  /** What tokenizePrompt returned for this request, passed back to generateStream (absent on tokenizePrompt). */
  prepared?: GraphPrepared;
}

/** tokenizePrompt's answer: the checked request, as the front admits it. */
export interface GraphPrepared {
  /** The prompt's token ids (after the chat template), when the graph has one tokenizer. */
  tokenIds?: number[];
  promptTokens: number;
  /** Resolved: the request's max_tokens or the default. */
  maxTokens: number;
  n: number;
  /** The prompt as text (after the chat template), for echo and audit logs. */
  promptText: string;
  /** Anything the graph wants back in generateStream (e.g. HybridRouter's choice); opaque to the front. */
  state?: unknown;
}

/** Text bytes and special flag of a token id, as the graph's tokenizer has them. */
export interface GraphToken {
  id: number;
  bytes: number[];
  special: boolean;
}

/** One step of one sample, as LLMEngine's RequestOutput without what the front rebuilds. */
export interface GraphDelta {
  index: number;
  text: string;
  tokenIds: number[];
  finished: boolean;
  finishReason: 'stop' | 'length' | 'abort' | null;
  /** The stop token id or stop string that ended the sample, if one did. */
  stopReason: number | string | null;
  logprobs?: TokenLogprob[];
  promptLogprobs?: Array<TokenLogprob | null>;
  /** This sample's counts so far (promptTokens the same on every delta). */
  usage: { promptTokens: number; completionTokens: number };
  /** With GraphRequest.tokenInfo: every id of tokenIds and logprobs not sent before in this request. */
  tokens?: GraphToken[];
}

/** What /v1/models, /info and the front's limits say about a graph. */
export interface GraphInfo {
  /** The graph's own model name (the front serves it under the name it was bound with). */
  name: string;
  /** Longest prompt + output in tokens. */
  maxModelLen: number;
  /** Unix seconds the graph was created or its model loaded. */
  createdS: number;
  /** True when noise (random weights) is served. */
  randomWeights?: boolean;
  /** Requests the graph runs at once (TGI /info's max_concurrent_requests). */
  maxConcurrentRequests?: number;
  /** What it is, for /v1/models' description. */
  description?: string;
  /**
   * Further names a request may give as `model` on this graph (MultiModelServer's catalogue, MultiLoraServer's
   * adapters): the front sends a request naming one to this graph with GraphRequest.model, and lists them in
   * its /v1/models.
   */
  models?: string[];
  /** The graph serves tokenizeEmbeddingInputs and embedTokens (LLMFront's /v1/embeddings, llm.proto Embed). */
  embeddings?: boolean;
  /** The graph serves tokenizeText and detokenizeTokens (LLMFront's /tokenize, /detokenize). */
  tokenizer?: boolean;
}

/**
 * A model's info as a graph that forwards it (ResponseCache, PdRouter) gives it: generation only, without
 * the optional methods it does not forward.
 */
export function generationOnly(info: GraphInfo): GraphInfo {
  const { embeddings: _embeddings, tokenizer: _tokenizer, ...rest } = info;
  return rest;
}

/**
 * Embeddings over a graph, in two calls as generation is, so that the front admits the request by its
 * prompt tokens between them: tokenizeEmbeddingInputs checks `dimensions` and every input (errors name
 * `input` or `input[i]`) and returns the token ids; embedTokens returns one unit float32 vector per id list.
 */
export interface GraphEmbedRequest {
  requestId: string;
  inputs: EmbeddingInput[];
  /** The client's `dimensions`: only the model's own size is accepted. */
  dimensions?: number;
  /** As GraphRequest.model. */
  model?: string;
}

export interface GraphEmbedTokensRequest {
  requestId: string;
  /** What tokenizeEmbeddingInputs returned. */
  tokenIds: number[][];
  model?: string;
}

/** vLLM's /tokenize over a graph: the ids a completion or chat request would start from. */
export interface GraphTokenizeRequest {
  requestId: string;
  request: TokenizeRequest;
  model?: string;
}

export interface GraphDetokenizeRequest {
  requestId: string;
  /** Non-negative integers, no more than the model's context; the graph checks them against its vocabulary. */
  tokens: number[];
  model?: string;
}

/**
 * The three methods; a deployment class implements them (async or not, generators for the stream), and
 * the optional ones that its GraphInfo declares (embeddings, tokenizer).
 */
export interface GenerationGraph {
  graphInfo(): Promise<GraphInfo> | GraphInfo;
  tokenizePrompt(req: GraphRequest): Promise<GraphPrepared> | GraphPrepared;
  generateStream(req: GraphRequest): AsyncIterable<GraphDelta>;
  tokenizeEmbeddingInputs?(req: GraphEmbedRequest): Promise<number[][]>;
  embedTokens?(req: GraphEmbedTokensRequest): Promise<Float32Array[]>;
  tokenizeText?(req: GraphTokenizeRequest): Promise<{ tokens: number[]; maxModelLen: number }>;
  detokenizeTokens?(req: GraphDetokenizeRequest): Promise<string>;
}
