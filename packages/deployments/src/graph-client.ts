/**
 * How LLMFront reaches a generation graph: through a handle to its deployment (any process or node), or
 * directly when the graph is the calling object itself (a graph serving its own HTTP through the front's
 * code). Both give the same three calls; the graph's info is asked once and again after a failure.
 */
import type { DeploymentHandle } from '@flotilla/core';
import {
  GRAPH_METHODS,
  type GenerationGraph,
  type GraphDelta,
  type GraphInfo,
  type GraphPrepared,
  type GraphRequest,
} from './graph.js';

export interface GraphClient {
  info(): Promise<GraphInfo>;
  tokenize(req: GraphRequest): Promise<GraphPrepared>;
  generate(req: GraphRequest): AsyncIterable<GraphDelta>;
}

/** A graph behind a handle (its deployment's class implements GenerationGraph). */
export function handleClient(handle: DeploymentHandle): GraphClient {
  return cachedInfo({
    info: () => handle.remote(GRAPH_METHODS.info, []) as Promise<GraphInfo>,
    // A request naming one of a multiplexed graph's models is that call's model id: its holders are preferred.
    tokenize: (req) => handle.remote(GRAPH_METHODS.tokenize, [req], modelOf(req)) as Promise<GraphPrepared>,
    generate: (req) => handle.remoteStream(GRAPH_METHODS.generate, [req], modelOf(req)) as AsyncIterable<GraphDelta>,
  });
}

/** A graph in this process (no crossing: its deltas are read as it yields them). */
export function localClient(graph: GenerationGraph): GraphClient {
  return cachedInfo({
    info: async () => graph.graphInfo(),
    tokenize: async (req) => graph.tokenizePrompt(req),
    generate: (req) => graph.generateStream(req),
  });
}

function modelOf(req: GraphRequest): Parameters<DeploymentHandle['remote']>[2] {
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
