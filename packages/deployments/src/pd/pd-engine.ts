/**
 * The one place PD binds to the engine's KV transfer: everything else in pd/ sees only KvTransferEngine.
 *
 * Bound to the native calls (`NativeModel.exportKv` / `importKv`, h/kvxfer) and the engine's public
 * parts, without an engine-level transfer API:
 * - prefill: the request runs as any other; once its first output is out, its prompt blocks are held
 *   (one more reference each, so neither preemption nor abort can hand them out), exported, and the
 *   request is aborted (a decode step of it may already run: wasted, not wrong).
 * - decode: the payload is imported into fresh blocks, whose full blocks are entered into the prefix
 *   cache under the prompt's chained hashes and released; the request then starts as usual and its
 *   admission finds them: only the prompt's last partial block (< blockSize tokens) is recomputed, and
 *   the first token is sampled again — the same token, as the draw depends only on (seed, position).
 *   Under memory pressure the cached blocks may be evicted before admission: the prompt is then
 *   recomputed (slower, same output). Needs prefix caching on (the default).
 */
import {
  hashBlock,
  type LLMEngine,
  type NativeModel,
  type PreparedRequest,
  type RequestOutput,
} from '@flotilla/engine';
import { KvHandoffError } from './pd-errors.js';

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
  /** Runs the prompt, samples the first token, exports the prompt's KV; the request holds no blocks after. */
  prefill(prepared: PreparedRequest, options: PdRunOptions): Promise<PrefillOutcome>;
  /**
   * Imports `kv` (the prompt's KV from another engine of the same model) and runs the request from
   * there. Outputs start at the first token (the prefill side's, sampled again here); aborting frees
   * the blocks.
   */
  decode(
    prepared: PreparedRequest,
    kv: Uint8Array,
    options: PdRunOptions,
  ): Promise<{ outputs: AsyncIterable<RequestOutput>; importMs: number }>;
  /** Free and total KV blocks of the pool. */
  kvBlocks(): { free: number; total: number; blockSize: number };
}

/** What the native model offers for transfer (optional in NativeModel's type: test fakes lack it). */
type KvModel = NativeModel & {
  exportKv?(blocks: Int32Array, numTokens: number, out?: Uint8Array): Promise<Uint8Array>;
  importKv?(payload: Uint8Array, blocks: Int32Array): Promise<number>;
};

export function kvTransferOf(engine: LLMEngine): KvTransferEngine {
  const bm = engine.scheduler.blockManager;
  const pool = bm.pool;
  const model = engine.nativeModel as KvModel;
  const need = <K extends 'exportKv' | 'importKv'>(k: K): NonNullable<KvModel[K]> => {
    const fn = model[k];
    if (typeof fn !== 'function') throw new KvHandoffError(`this engine's native model has no ${k} (KV transfer)`);
    return fn.bind(model) as NonNullable<KvModel[K]>;
  };
  return {
    async prefill(prepared, { requestId, signal }) {
      const exportKv = need('exportKv');
      const stream = engine.generate(prepared, { requestId, ...(signal ? { signal } : {}) });
      try {
        const next = await stream.next();
        if (next.done) throw new KvHandoffError(`request ${requestId} ended before its first token`);
        const first = next.value;
        if (first.finished) return { first, firstToken: first.tokenIds[0] ?? -1, kv: null, exportMs: 0 };
        const seq = engine.scheduler.running.find((s) => s.requestId === requestId);
        const promptLen = prepared.tokenIds.length;
        const n = bm.blocksFor(promptLen);
        if (!seq || seq.numBlocks < n || seq.numComputedTokens < promptLen)
          throw new KvHandoffError(`request ${requestId} lost its prompt blocks (preempted) before the export`);
        const blocks = seq.blockTable.slice(0, n);
        for (const b of blocks) pool.incRef(b);
        const t0 = performance.now();
        try {
          const kv = await exportKv(blocks, promptLen);
          return { first, firstToken: first.tokenIds[0]!, kv, exportMs: performance.now() - t0 };
        } finally {
          engine.abort(requestId);
          for (const b of blocks) pool.release(b);
        }
      } finally {
        await stream.return?.();
      }
    },

    async decode(prepared, kv, { requestId, signal }) {
      const importKv = need('importKv');
      if (!bm.enablePrefixCaching) throw new KvHandoffError('KV import needs prefix caching on the decode engine');
      const tokens = Int32Array.from(prepared.tokenIds);
      const bs = bm.blockSize;
      const n = bm.blocksFor(tokens.length);
      if (pool.numFreeBlocks < n) throw new KvHandoffError(`no room for ${n} KV blocks (${pool.numFreeBlocks} free)`);
      const blocks = new Int32Array(n);
      for (let i = 0; i < n; i++) blocks[i] = pool.allocate();
      const t0 = performance.now();
      try {
        await importKv(kv, blocks);
        // What admission may find: full blocks, and never the prompt's last token (it runs to be sampled).
        const full = Math.floor((tokens.length - 1) / bs);
        let parent = 0;
        for (let i = 0; i < full; i++) {
          const h = hashBlock(parent, tokens, i * bs, bs);
          pool.register(blocks[i]!, h, parent, tokens, i * bs);
          parent = h;
        }
      } finally {
        for (let i = n - 1; i >= 0; i--) pool.release(blocks[i]!);
      }
      const importMs = performance.now() - t0;
      const outputs = engine.generate(prepared, { requestId, ...(signal ? { signal } : {}) });
      return { outputs, importMs };
    },

    kvBlocks: () => ({ free: pool.numFreeBlocks, total: pool.numBlocks, blockSize: pool.blockSize }),
  };
}
