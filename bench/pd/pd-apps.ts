/** The bench's deployments: the PD graph with prefill and decode in their own processes. */
import { deployment } from '@flotilla/core';
import { DecodeServer, PdRouter, PrefillServer } from '@flotilla/deployments';

@deployment({ placement: 'process', maxOngoingRequests: 256 })
export class BenchPrefill extends PrefillServer {}

@deployment({ placement: 'process', maxOngoingRequests: 256 })
export class BenchDecode extends DecodeServer {}

@deployment({ placement: 'thread', maxOngoingRequests: 256 })
export class BenchPd extends PdRouter {}

export interface BenchAppArgs {
  model: string;
  tokenizer: string;
  kvCacheBytes: number;
  /** PD: one thread each side; single: the decode side alone with both threads. */
  mode: 'pd' | 'single';
  threads: number;
}

export function benchApp(a: BenchAppArgs) {
  const common = {
    model: a.model,
    tokenizer: a.tokenizer,
    device: 'cpu' as const,
    kvCacheBytes: a.kvCacheBytes,
    maxNumBatchedTokens: 2048,
    enablePrefixCaching: false,
    auditLog: 'none' as const,
  };
  const prefillThreads = a.mode === 'pd' ? Math.max(1, Math.floor(a.threads / 2)) : 1;
  const decodeThreads = a.mode === 'pd' ? Math.max(1, a.threads - prefillThreads) : a.threads;
  return BenchPd.bind(
    BenchPrefill.bind({ ...common, numThreads: prefillThreads }),
    BenchDecode.bind({ ...common, numThreads: decodeThreads }),
    { disaggregate: a.mode === 'pd', exploreEvery: 0 },
  );
}
