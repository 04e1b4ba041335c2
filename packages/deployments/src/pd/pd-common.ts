/** What PrefillServer and DecodeServer share: preparing a PdRequest, outputs to PdDelta, KV reports. */
import { getReplicaContext } from '@flotilla/core';
import type { LLMEngine, PreparedRequest, RequestOutput, Tokenizer } from '@flotilla/engine';
import type { KvTransferEngine } from './pd-engine.js';
import type { KvReport, PdDelta, PdRequest } from './pd-wire.js';

/** The request checked on this engine (the router tokenized it on a replica of the same model). */
export function preparePd(engine: LLMEngine, req: PdRequest): PreparedRequest {
  return engine.prepare({ tokenIds: req.tokenIds }, req.params);
}

/**
 * One engine output as a delta; with tokenInfo, the text bytes of ids not sent before in this request
 * (`seen` is the request's set). `skip` drops the first `skip.tokens` tokens and `skip.chars` characters
 * of the sample's output (already sent by the prefill side) and is advanced as they go by.
 */
export function toPdDelta(
  out: RequestOutput,
  tokenizer: Pick<Tokenizer, 'tokenBytes' | 'isSpecial' | 'eosId'>,
  seen: Set<number> | null,
  skip: { tokens: number; chars: number } = { tokens: 0, chars: 0 },
): PdDelta | null {
  let tokenIds = out.tokenIds;
  let logprobs = out.logprobs;
  let text = out.text;
  if (skip.tokens > 0) {
    const n = Math.min(skip.tokens, tokenIds.length);
    tokenIds = tokenIds.slice(n);
    logprobs = logprobs?.slice(n);
    skip.tokens -= n;
  }
  if (skip.chars > 0) {
    const n = Math.min(skip.chars, text.length);
    text = text.slice(n);
    skip.chars -= n;
  }
  if (tokenIds.length === 0 && text === '' && !out.finished) return null;
  const delta: PdDelta = {
    index: out.index,
    text,
    tokenIds,
    finished: out.finished,
    finishReason: out.finishReason as PdDelta['finishReason'],
    stopReason: out.stopReason,
    usage: out.usage,
    ...(logprobs ? { logprobs } : {}),
  };
  if (seen) {
    const ids = [...tokenIds, ...(logprobs ?? []).flatMap((l) => [l.tokenId, ...l.top.map((t) => t.tokenId)])];
    const fresh = [...new Set(ids)].filter((id) => !seen.has(id));
    for (const id of fresh) seen.add(id);
    delta.tokens = fresh.map((id) => ({
      id,
      bytes: [...tokenizer.tokenBytes(id)],
      special: id === tokenizer.eosId || tokenizer.isSpecial(id),
    }));
  }
  return delta;
}

/** This replica's KV pool as the router's DecodeChoice reads it. */
export function kvReportOf(kv: KvTransferEngine): KvReport {
  const b = kv.kvBlocks();
  return {
    replicaId: getReplicaContext()?.replicaId ?? 'local',
    freeBlocks: b.free,
    totalBlocks: b.total,
    blockSize: b.blockSize,
  };
}
