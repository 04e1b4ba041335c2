/**
 * Deployments of bench/spec-decode's 'actors' section: the draft and the target of a SpeculativePipeline
 * each in a child process (the pipeline in a worker thread), and the target alone as an LLMServer in a
 * child process of its own, for plain generation over the same kind of boundary.
 */
import { deployment } from '@flotilla/core';
import { DraftModel, LLMServer, SpeculativePipeline, TargetModel, type SpecModelOptions } from '@flotilla/deployments';

/** CPU milliseconds this process has used (all its threads, the native ones included). */
function processCpuMs(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}

@deployment({ placement: 'process' })
export class ActorsDraft extends DraftModel {
  cpuMs(): number {
    return processCpuMs();
  }
}

@deployment({ placement: 'process' })
export class ActorsTarget extends TargetModel {
  cpuMs(): number {
    return processCpuMs();
  }
}

@deployment({ placement: 'thread' })
export class ActorsPipeline extends SpeculativePipeline {}

@deployment({ placement: 'process' })
export class ActorsPlain extends LLMServer {
  cpuMs(): number {
    return processCpuMs();
  }
}

export interface ActorsPair {
  target: string;
  draft: string;
  numThreads: number;
  draftFormat: SpecModelOptions['weightFormat'];
  k: number;
  /** SpeculativePipelineOptions.lookahead. */
  lookahead: boolean;
}

export function pipelineApp(p: ActorsPair) {
  const common = { numThreads: p.numThreads, device: 'cpu' as const, maxNumBatchedTokens: 512 };
  return ActorsPipeline.bind(
    ActorsDraft.bind({ model: p.draft, ...common, ...(p.draftFormat ? { weightFormat: p.draftFormat } : {}) }),
    ActorsTarget.bind({ model: p.target, ...common }),
    { k: p.k, lookahead: p.lookahead },
  );
}

export function plainApp(p: ActorsPair) {
  return ActorsPlain.bind({
    model: p.target,
    numThreads: p.numThreads,
    device: 'cpu',
    maxNumSeqs: 4,
    maxNumBatchedTokens: 512,
    enablePrefixCaching: false,
    auditLog: 'none',
  });
}
