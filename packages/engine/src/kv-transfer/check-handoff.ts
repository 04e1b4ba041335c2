/**
 * Checks a KvHandoff before a decode engine admits it, synchronously and without native calls, so a
 * bad one is refused by generateFromHandoff() itself with a typed error: the payload's header against
 * this engine's pool (KvModelMismatchError, KvDtypeMismatchError, KvBlockSizeMismatchError,
 * KvPayloadError), then the tokens and lengths (InvalidPromptError, ContextLengthError).
 */
import { ContextLengthError, InvalidPromptError } from '../errors.js';
import { KvPayloadError } from './kv-errors.js';
import type { KvHandoff } from './kv-handoff.js';
import { checkKvHeader, type KvPoolShape, readKvHeader } from './kv-payload.js';

export interface HandoffLimits {
  pool: KvPoolShape;
  vocabSize: number;
  maxModelLen: number;
}

/** Returns the payload (a Uint8Array whose header fits the pool and the prompt). */
export function checkHandoff(h: KvHandoff, limits: HandoffLimits): Uint8Array {
  if (!h || typeof h !== 'object') throw new KvPayloadError('a KV handoff must be the object prefill() returned');
  if (h.finishReason != null || h.kv == null)
    throw new KvPayloadError('the handoff finished at prefill (finishReason set, no KV): there is nothing to continue');
  const header = readKvHeader(h.kv);
  checkKvHeader(header, limits.pool);
  const ids = h.promptTokenIds;
  if (!Array.isArray(ids) || ids.length === 0)
    throw new InvalidPromptError('prompt: a handoff needs its prompt token ids');
  const inVocab = (t: unknown) => Number.isInteger(t) && (t as number) >= 0 && (t as number) < limits.vocabSize;
  if (!ids.every(inVocab) || !inVocab(h.firstTokenId))
    throw new InvalidPromptError(`prompt: token ids must be integers in 0..${limits.vocabSize - 1}`);
  if (header.numTokens !== ids.length)
    throw new KvPayloadError(`the KV payload holds ${header.numTokens} tokens; the prompt has ${ids.length}`);
  const maxTokens = h.params?.maxTokens;
  if (!Number.isInteger(maxTokens) || maxTokens < 2)
    throw new KvPayloadError('the handoff parameters need maxTokens of at least 2 (one was sampled at prefill)');
  if (ids.length + maxTokens > limits.maxModelLen)
    throw new ContextLengthError(
      'maxTokens',
      `prompt (${ids.length}) + maxTokens (${maxTokens}) exceeds maxModelLen ${limits.maxModelLen}`,
      {
        promptLen: ids.length,
        maxTokens,
        maxModelLen: limits.maxModelLen,
      },
    );
  if (!Number.isInteger(h.seed) || h.seed < 0 || h.seed > 0xffffffff)
    throw new KvPayloadError('the handoff seed must be a uint32');
  return h.kv;
}
