/**
 * PD's own error: a KV handoff that cannot happen (the prefill sequence was preempted before its KV
 * was exported, the decode pool has no room for the payload, the engine has no KV transfer). The
 * router answers it with local prefill. Registered for the wire so the code survives the hop.
 */
import { registerErrorClasses } from '@flotilla/core';

export class KvHandoffError extends Error {
  readonly code: string = 'E_KV_HANDOFF';
  readonly status: number = 503;
  constructor(message: string) {
    super(message);
    this.name = 'KvHandoffError';
  }
}

registerErrorClasses({ KvHandoffError });
