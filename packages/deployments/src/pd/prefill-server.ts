/**
 * PrefillServer: the prefill half of prefill/decode disaggregation. It runs a request's prompt on its
 * engine, samples the first token, exports the prompt's KV blocks into one payload and frees them, and
 * returns both; a DecodeServer imports the payload and continues. It is an LLMServer (its own OpenAI,
 * TGI and gRPC routes still work), so the same model loads with the same options on both sides.
 *
 * ```ts
 * @deployment({ placement: 'process' }) class Prefill extends PrefillServer {}
 * ```
 */
import { getRequestContext } from '@flotilla/core';
import { LLMServer } from '../llm-server.js';
import { kvReportOf, preparePd, toPdDelta } from './pd-common.js';
import { kvTransferOf } from './pd-engine.js';
import type { KvReport, PdRequest, PrefillHandoff, PrefillItem } from './pd-wire.js';

export class PrefillServer extends LLMServer {
  /** The router's KV handoff calls, through handles only (a client could otherwise read KV state). */
  static override internalMethods: readonly string[] = [
    ...LLMServer.internalMethods,
    'prefill',
    'prefillStream',
    'kvReport',
  ];
  /**
   * The first token of `req` and its prompt's KV. Cancelling the call (the caller's signal) aborts the
   * request and frees its blocks; once it has returned, this side holds nothing of the request.
   */
  async prefill(req: PdRequest): Promise<PrefillHandoff> {
    const engine = await this.loadedEngine();
    const kv = kvTransferOf(engine);
    const started = performance.now();
    const signal = getRequestContext()?.signal;
    const handoff = await kv.prefill(preparePd(engine, req), {
      requestId: req.requestId,
      ...(signal ? { signal } : {}),
    });
    const first = toPdDelta(handoff.firstOutput, engine.tokenizer, req.tokenInfo ? new Set() : null);
    if (!first) throw new Error(`prefill of ${req.requestId} produced no output`);
    return { first, handoff, prefillMs: performance.now() - started, report: kvReportOf(kv) };
  }

  /**
   * prefill() as a stream: the first token's output as soon as it is known, then the handoff, so that
   * the caller can send the first token on while the payload is still on its way.
   */
  async *prefillStream(req: PdRequest): AsyncGenerator<PrefillItem> {
    const { first, ...rest } = await this.prefill(req);
    yield { first };
    yield rest;
  }

  /** This replica's KV pool (free and total blocks). */
  async kvReport(): Promise<KvReport> {
    return kvReportOf(kvTransferOf(await this.loadedEngine()));
  }
}
