/**
 * DecodeServer: the decode half of prefill/decode disaggregation. decode() imports the KV a
 * PrefillServer exported into newly allocated blocks and continues the request from its second token,
 * streaming; generateLocal() runs a whole request here (local prefill: the fallback when a transfer
 * fails). Both stream KV reports (after import and at the end) that PdRouter uses to place the next
 * request on the replica with the most free KV; autoscalingMetrics() reports the same numbers.
 */
import { getRequestContext } from '@flotilla/core';
import type { KvHandoff } from '@flotilla/engine';
import { LLMServer } from '../llm-server.js';
import { kvReportOf, preparePd, toPdDelta } from './pd-common.js';
import { kvTransferOf } from './pd-engine.js';
import type { DecodeItem, KvReport, PdDelta, PdRequest } from './pd-wire.js';

export class DecodeServer extends LLMServer {
  /** The router's calls, through handles only: a client must not hand the engine KV bytes of its own. */
  static override internalMethods: readonly string[] = [
    ...LLMServer.internalMethods,
    'decode',
    'generateLocal',
    'kvReport',
  ];
  /**
   * Continues a request from a PrefillServer's handoff (prompt ids, parameters, seed, first token, the
   * prompt's KV). Items: a report once the handoff is accepted here, the outputs from the second token
   * on, a report at the end. A payload this engine cannot take (another model, dtype, block size, not a
   * payload) throws the engine's KV error before anything is yielded. Cancelling (breaking out, the
   * caller's signal) aborts the request and frees its blocks, imported or not.
   */
  async *decode(req: PdRequest, handoff: KvHandoff, first: PdDelta): AsyncGenerator<DecodeItem> {
    const engine = await this.loadedEngine();
    const kv = kvTransferOf(engine);
    const signal = getRequestContext()?.signal;
    const outputs = kv.decode(handoff, { requestId: req.requestId, ...(signal ? { signal } : {}) });
    try {
      yield { report: kvReportOf(kv) };
      const seen = req.tokenInfo ? new Set((first.tokens ?? []).map((t) => t.id)) : null;
      for await (const out of outputs) {
        const delta = toPdDelta(out, engine.tokenizer, seen);
        if (delta) yield { delta };
      }
    } finally {
      // Cancelled before the loop took over the stream (the loop would close it): abort the request here.
      await (outputs as AsyncIterableIterator<unknown>).return?.();
    }
    yield { report: kvReportOf(kv) };
  }

  /**
   * The whole request on this replica's engine (prompt included), leaving out the first `skip.tokens`
   * tokens and `skip.chars` characters of output that the caller already sent. With the request's
   * fixed seed the output is the one the prefill/decode pair would have given.
   */
  async *generateLocal(
    req: PdRequest,
    skip: { tokens: number; chars: number; seen?: number[] },
  ): AsyncGenerator<DecodeItem> {
    const engine = await this.loadedEngine();
    const kv = kvTransferOf(engine);
    const signal = getRequestContext()?.signal;
    const stream = engine.generate(preparePd(engine, req), {
      requestId: `${req.requestId}/local`,
      ...(signal ? { signal } : {}),
    });
    yield { report: kvReportOf(kv) };
    const seen = req.tokenInfo ? new Set(skip.seen ?? []) : null;
    const left = { tokens: skip.tokens, chars: skip.chars };
    for await (const out of stream) {
      const delta = toPdDelta(out, engine.tokenizer, seen, left);
      if (delta) yield { delta };
    }
    yield { report: kvReportOf(kv) };
  }

  /** This replica's KV pool (free and total blocks). */
  async kvReport(): Promise<KvReport> {
    return kvReportOf(kvTransferOf(await this.loadedEngine()));
  }

  /** LLMServer's load report plus the pool's free blocks (kvFreeBlocks), for the 'llm' policy and dashboards. */
  override autoscalingMetrics(): Record<string, number> {
    const stats = this.engineStats();
    return { ...super.autoscalingMetrics(), ...(stats ? { kvFreeBlocks: stats.freeBlocks } : {}) };
  }
}
