/**
 * How LLMFront reaches a generation graph: through a handle to its deployment (any process or node), or
 * directly when the graph is the calling object itself (a graph serving its own HTTP through the front's
 * code). Both give the same calls (the optional ones refused, UnsupportedTaskError, where a local graph lacks
 * them); the graph's info is asked once and again after a failure.
 */
import type { DeploymentHandle } from '@flotilla/core';
import { UnsupportedTaskError } from './errors.js';
import {
  GRAPH_METHODS,
  type GenerationGraph,
  type GraphDelta,
  type GraphDetokenizeRequest,
  type GraphEmbedRequest,
  type GraphEmbedTokensRequest,
  type GraphInfo,
  type GraphPrepared,
  type GraphRequest,
  type GraphTokenizeRequest,
} from './graph.js';

export interface GraphClient {
  info(): Promise<GraphInfo>;
  tokenize(req: GraphRequest): Promise<GraphPrepared>;
  generate(req: GraphRequest): AsyncIterable<GraphDelta>;
  /** The optional methods (GraphInfo.embeddings, GraphInfo.tokenizer): call them only where the info says so. */
  embedInputs(req: GraphEmbedRequest): Promise<number[][]>;
  embed(req: GraphEmbedTokensRequest): Promise<Float32Array[]>;
  tokenizeText(req: GraphTokenizeRequest): Promise<{ tokens: number[]; maxModelLen: number }>;
  detokenize(req: GraphDetokenizeRequest): Promise<string>;
}

/** A graph behind a handle (its deployment's class implements GenerationGraph). */
export function handleClient(handle: DeploymentHandle): GraphClient {
  return cachedInfo({
    info: () => handle.remote(GRAPH_METHODS.info, []) as Promise<GraphInfo>,
    // A request naming one of a multiplexed graph's models is that call's model id: its holders are preferred.
    tokenize: (req) => handle.remote(GRAPH_METHODS.tokenize, [req], modelOf(req)) as Promise<GraphPrepared>,
    generate: (req) => handle.remoteStream(GRAPH_METHODS.generate, [req], modelOf(req)) as AsyncIterable<GraphDelta>,
    embedInputs: (req) => handle.remote(GRAPH_METHODS.embedInputs, [req], modelOf(req)) as Promise<number[][]>,
    embed: (req) => handle.remote(GRAPH_METHODS.embed, [req], modelOf(req)) as Promise<Float32Array[]>,
    tokenizeText: (req) =>
      handle.remote(GRAPH_METHODS.tokenizeText, [req], modelOf(req)) as Promise<{
        tokens: number[];
        maxModelLen: number;
      }>,
    detokenize: (req) => handle.remote(GRAPH_METHODS.detokenize, [req], modelOf(req)) as Promise<string>,
  });
}

/** A graph in this process (no crossing: its deltas are read as it yields them). */
export function localClient(graph: GenerationGraph): GraphClient {
  return cachedInfo({
    info: async () => graph.graphInfo(),
    tokenize: async (req) => graph.tokenizePrompt(req),
    generate: (req) => graph.generateStream(req),
    embedInputs: async (req) => (graph.tokenizeEmbeddingInputs ?? lacks('embeddings')).call(graph, req),
    embed: async (req) => (graph.embedTokens ?? lacks('embeddings')).call(graph, req),
    tokenizeText: async (req) => (graph.tokenizeText ?? lacks('/tokenize')).call(graph, req),
    detokenize: async (req) => (graph.detokenizeTokens ?? lacks('/detokenize')).call(graph, req),
  });
}

function lacks(what: string): never {
  throw new UnsupportedTaskError(`This graph does not serve ${what}`);
}

function modelOf(req: { model?: string }): Parameters<DeploymentHandle['remote']>[2] {
  return req.model !== undefined ? { multiplexedModelId: req.model } : undefined;
}

function cachedInfo(client: GraphClient): GraphClient {
  let info: Promise<GraphInfo> | undefined;
  return {
    ...client,
    info: () => {
      info ??= client.info();
      info.catch(() => {
        info = undefined;
      });
      return info;
    },
  };
}
