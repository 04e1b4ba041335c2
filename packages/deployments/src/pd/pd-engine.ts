/**
 * The one place PD binds to the engine's KV transfer (LLMEngine.prefill / generateFromHandoff, kv-transfer/):
 * everything else in pd/ sees only KvTransferEngine.
 */
import type { KvHandoff, LLMEngine, PreparedRequest, RequestOutput } from '@flotilla/engine';

export interface PdRunOptions {
  requestId: string;
  signal?: AbortSignal;
}

export interface KvTransferEngine {
  /** Runs the prompt, samples the first token, exports the prompt's KV; the request holds no blocks after. */
  prefill(prepared: PreparedRequest, options: PdRunOptions): Promise<KvHandoff>;
  /** Imports a handoff's KV and decodes from the token after the first; aborting frees the blocks. */
  decode(handoff: KvHandoff, options: PdRunOptions): AsyncIterable<RequestOutput>;
  /** Free and total KV blocks of the pool. */
  kvBlocks(): { free: number; total: number; blockSize: number };
}

export function kvTransferOf(engine: LLMEngine): KvTransferEngine {
  const pool = engine.scheduler.blockManager.pool;
  return {
    prefill: (prepared, { requestId, signal }) =>
      engine.prefill(prepared, undefined, { requestId, ...(signal ? { signal } : {}) }),
    decode: (handoff, { requestId, signal }) =>
      engine.generateFromHandoff(handoff, { requestId, ...(signal ? { signal } : {}) }),
    kvBlocks: () => ({ free: pool.numFreeBlocks, total: pool.numBlocks, blockSize: pool.blockSize }),
  };
}
