/**
 * DecodeServer: the decode half of prefill/decode disaggregation. decode() imports the KV a
 * PrefillServer exported into newly allocated blocks and continues the request from its second token,
 * streaming; generateLocal() runs a whole request here (local prefill: the fallback when a transfer
 * fails). Both stream KV reports (after import and at the end) that PdRouter uses to place the next
 * request on the replica with the most free KV; autoscalingMetrics() reports the same numbers.
 */
import { getRequestContext } from '@flotilla/core';
import { LLMServer } from '../llm-server.js';
import { kvReportOf, preparePd, toPdDelta } from './pd-common.js';
import { kvTransferOf } from './pd-engine.js';
import { KvHandoffError } from './pd-errors.js';
import type { DecodeItem, KvReport, PdDelta, PdRequest } from './pd-wire.js';

export class DecodeServer extends LLMServer {
  /**
   * Continues `req` from the prefill side's first token and KV payload. Items: a report once the KV is
   * in (with importMs), the outputs from the second token on, a report at the end. A first token other
   * than the prefill side's (engines that compute differently) fails with KvHandoffError before any
   * output. Cancelling (breaking
   * out, the caller's signal) aborts the request and frees its blocks. A bad payload throws the engine's
   * KV error before anything is yielded.
   */
  async *decode(
    req: PdRequest,
    handoff: { first: PdDelta; firstToken: number; kv: Uint8Array },
  ): AsyncGenerator<DecodeItem> {
    const engine = await this.loadedEngine();
    const kv = kvTransferOf(engine);
    const signal = getRequestContext()?.signal;
    const { outputs, importMs } = await kv.decode(preparePd(engine, req), handoff.kv, {
      requestId: req.requestId,
      ...(signal ? { signal } : {}),
    });
    try {
      yield { report: kvReportOf(kv), importMs };
      const seen = req.tokenInfo ? new Set((handoff.first.tokens ?? []).map((t) => t.id)) : null;
      // The first token comes again (sampled from the imported KV): checked, and not sent twice.
      const skip = { tokens: handoff.first.tokenIds.length, chars: handoff.first.text.length };
      let checked = false;
      for await (const out of outputs) {
        if (!checked && out.tokenIds.length > 0) {
          checked = true;
          if (out.tokenIds[0] !== handoff.firstToken)
            throw new KvHandoffError(
              `decode sampled token ${out.tokenIds[0]} where prefill sampled ${handoff.firstToken}: the engines differ`,
            );
        }
        const delta = toPdDelta(out, engine.tokenizer, seen, skip);
        if (delta) yield { delta };
      }
    } finally {
      // Cancelled before the loop took over the stream (it would close it): abort the request here.
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
