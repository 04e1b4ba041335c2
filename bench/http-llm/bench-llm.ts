/** The benchmark's LLMServer deployment, in a module of its own: replicas import this file, not run.ts. */
import { deployment } from '@flotilla/core';
import { LLMServer } from '@flotilla/deployments';

@deployment({ maxOngoingRequests: 512, placement: 'thread' })
export class BenchLLM extends LLMServer {}
