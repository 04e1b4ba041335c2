/**
 * The one place PD binds to the engine's KV export/import (h/kvxfer's API): everything else in pd/
 * sees only this interface, so a change there is a change here.
 */
import type { LLMEngine, PreparedRequest, RequestOutput } from '@flotilla/engine';

export interface PdRunOptions {
  requestId: string;
  signal?: AbortSignal;
}

export interface PrefillOutcome {
  /** The first sampled output (token, text, logprobs) as the engine streams it. */
  first: RequestOutput;
  firstToken: number;
  /** The prompt's KV in the transfer format; null when the first token finished the request. */
  kv: Uint8Array | null;
  exportMs: number;
}

export interface KvTransferEngine {
  /** Runs only the prompt: samples the first token, exports the prompt's KV, frees the request's blocks. */
  prefill(prepared: PreparedRequest, options: PdRunOptions): Promise<PrefillOutcome>;
  /**
   * Continues a request prefilled elsewhere: allocates blocks, imports `kv`, then decodes from the
   * token after `firstToken`. Outputs start at the second token; aborting frees the blocks.
   */
  decode(
    prepared: PreparedRequest,
    handoff: { firstToken: number; kv: Uint8Array },
    options: PdRunOptions,
  ): { outputs: AsyncIterable<RequestOutput>; importMs: number };
  /** Free and total KV blocks of the pool. */
  kvBlocks(): { free: number; total: number; blockSize: number };
}

export function kvTransferOf(engine: LLMEngine): KvTransferEngine {
  const pool = () => engine.scheduler.blockManager.pool;
  return {
    prefill: () => {
      throw new Error('KV export is not bound yet (waiting for the engine API)');
    },
    decode: () => {
      throw new Error('KV import is not bound yet (waiting for the engine API)');
    },
    kvBlocks: () => ({ free: pool().numFreeBlocks, total: pool().numBlocks, blockSize: pool().blockSize }),
  };
}
