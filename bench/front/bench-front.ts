/** bench/front's deployments, in a module of their own: replicas import this file, not run.ts. */
import { deployment } from '@flotilla/core';
import { LLMFront, LLMServer } from '@flotilla/deployments';

/** Served directly (the baseline). */
@deployment({ maxOngoingRequests: 512, placement: 'thread' })
export class DirectLLM extends LLMServer {}

/** The same server as a graph behind LLMFront. */
@deployment({ maxOngoingRequests: 512, placement: 'thread' })
export class GraphLLM extends LLMServer {}

@deployment({ maxOngoingRequests: 512, placement: 'thread' })
export class BenchFront extends LLMFront {}
