/**
 * The engine's side of KV transfer, between its steps: exports of prefill() requests whose first token
 * is out, and imports of generateFromHandoff() requests waiting for a seat and blocks. The step loop
 * runs both between steps, one native call per sequence, so a copy never overlaps a step and the blocks
 * it reads or writes cannot change under it. A sequence aborted while its copy runs has its blocks freed
 * at once (no step can reuse them before the loop goes on); the copy's result is then dropped.
 */
import type { NativeModel } from '../native/native-types.js';
import type { Scheduler } from '../scheduler.js';
import type { Sequence } from '../sequence.js';
import { kvErrorFromNative } from './kv-errors.js';
import type { KvPoolShape } from './kv-payload.js';

/** The part of NativeModel KV transfer calls. */
export type KvTransferModel = Pick<
  NativeModel,
  'exportKv' | 'importKv' | 'kvFingerprint' | 'kvBlockBytes' | 'kvDtype' | 'blockSize' | 'config'
>;

interface PendingExport {
  seq: Sequence;
  /** kv on success, else the error; never called for a sequence finished meanwhile. */
  done: (kv: Uint8Array | null, err?: unknown) => void;
}

interface PendingImport {
  seq: Sequence;
  kv: Uint8Array;
  numTokens: number;
  registerPrefix: boolean;
  fail: (err: unknown) => void;
}

export class KvTransferQueue {
  private exports: PendingExport[] = [];
  private imports: PendingImport[] = [];

  constructor(
    private readonly model: KvTransferModel,
    private readonly scheduler: Scheduler,
  ) {}

  /** What an imported payload must match here (kv-payload.ts checkKvHeader). */
  poolShape(): KvPoolShape {
    const c = this.model.config;
    return {
      fingerprint: this.model.kvFingerprint ?? '',
      dtype: this.model.kvDtype,
      blockSize: this.model.blockSize,
      nLayers: c.nLayers,
      nKvHeads: c.nKvHeads,
      headDim: c.dim / c.nHeads,
      blockBytes: this.model.kvBlockBytes ?? 0,
    };
  }

  get hasExports(): boolean {
    return this.exports.length > 0;
  }

  /** Imports not yet admitted or copied (aborted ones leave at the next runImports). */
  get hasImports(): boolean {
    return this.imports.length > 0;
  }

  /** After the step that sampled its first token: export its computed tokens' blocks before the next step. */
  queueExport(seq: Sequence, done: PendingExport['done']): void {
    this.exports.push({ seq, done });
  }

  /** A sequence (first token appended, status 'waiting', no blocks) whose first numTokens tokens' K/V are `kv`. */
  queueImport(
    seq: Sequence,
    kv: Uint8Array,
    numTokens: number,
    registerPrefix: boolean,
    fail: (err: unknown) => void,
  ): void {
    this.imports.push({ seq, kv, numTokens, registerPrefix, fail });
  }

  /** Exports every queued sequence still running; the caller frees its blocks in `done`. */
  async runExports(): Promise<void> {
    const batch = this.exports;
    this.exports = [];
    for (const e of batch) {
      if (e.seq.status !== 'running') continue;
      const seq = e.seq;
      const n = Math.ceil(seq.numComputedTokens / this.scheduler.blockManager.blockSize);
      try {
        if (!this.model.exportKv) throw new Error('this native model cannot export KV');
        const kv = await this.model.exportKv(seq.blockTable.slice(0, n), seq.numComputedTokens);
        if (isRunning(seq)) e.done(kv);
      } catch (err) {
        if (isRunning(seq)) e.done(null, kvErrorFromNative(err));
      }
    }
  }

  /**
   * Admits queued imports in arrival order while seats and blocks last (the first that does not fit
   * waits, and those behind it too), copying each payload into its new blocks.
   */
  async runImports(): Promise<void> {
    while (this.imports.length > 0) {
      const im = this.imports[0]!;
      const seq = im.seq;
      if (seq.status !== 'waiting') {
        this.imports.shift(); // aborted before admission: it holds nothing
        continue;
      }
      if (!this.scheduler.admitImported(seq, im.numTokens)) return;
      this.imports.shift();
      try {
        if (!this.model.importKv) throw new Error('this native model cannot import KV');
        await this.model.importKv(im.kv, seq.blockTable.slice(0, seq.numBlocks));
      } catch (err) {
        if (isRunning(seq)) im.fail(kvErrorFromNative(err));
        continue;
      }
      if (!isRunning(seq)) continue;
      const bm = this.scheduler.blockManager;
      // Unregistered blocks stay so: later steps offer only blocks past numRegisteredBlocks.
      if (im.registerPrefix) bm.cacheFullBlocks(seq);
      else seq.numRegisteredBlocks = Math.min(seq.numBlocks, Math.floor(im.numTokens / bm.blockSize));
    }
  }

  /** Ends every queued import with `err` (the pool can never admit them); returns how many. */
  failImports(err: Error): number {
    const batch = this.imports;
    this.imports = [];
    for (const im of batch) if (im.seq.status === 'waiting') im.fail(err);
    return batch.length;
  }
}

/** Read through a call, so a check after an await is not narrowed by one before it. */
function isRunning(seq: Sequence): boolean {
  return seq.status === 'running';
}
