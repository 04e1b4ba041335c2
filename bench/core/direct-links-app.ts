/** Deployments for bench/core/direct-links.ts: a replica calling a no-op replica, and a speculative pipeline. */
import { deployment, type DeploymentHandle } from '@flotilla/core';
import { DraftModel, SpeculativePipeline, TargetModel } from '@flotilla/deployments';

@deployment({ placement: 'thread', maxOngoingRequests: 256 })
export class LinkNoop {
  noop(x: unknown) {
    return x;
  }
}

/** Times its own handle calls to LinkNoop, from inside its replica (µs per call, in call order). */
@deployment({ placement: 'thread' })
export class LinkProbe {
  constructor(private readonly target: DeploymentHandle<LinkNoop>) {}

  async measure(calls: number, warmup: number): Promise<number[]> {
    for (let i = 0; i < warmup; i++) await this.target.noop(i);
    const samples: number[] = [];
    for (let i = 0; i < calls; i++) {
      const t0 = process.hrtime.bigint();
      await this.target.noop(i);
      samples.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    return samples;
  }
}

export type Placement = 'thread' | 'process';

export const probeApp = (callee: Placement) => LinkProbe.bind(LinkNoop.bind().options({ placement: callee }));

@deployment({ placement: 'thread' })
export class BenchDraft extends DraftModel {}

@deployment({ placement: 'thread' })
export class BenchTarget extends TargetModel {}

@deployment({ placement: 'thread' })
export class BenchPipeline extends SpeculativePipeline {}

export function pipelineApp(args: { target: string; draft: string; tokenizer: string; placement: Placement }) {
  const common = { tokenizer: args.tokenizer, numThreads: 1, device: 'cpu' as const };
  return BenchPipeline.bind(
    BenchDraft.bind({ model: args.draft, ...common }).options({ placement: args.placement }),
    BenchTarget.bind({ model: args.target, ...common }).options({ placement: args.placement }),
    { k: 3 },
  );
}
