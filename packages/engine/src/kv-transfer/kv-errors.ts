/**
 * Typed errors of KV transfer (prefill on one engine, decode on another). The native addon rejects with
 * `.code` E_KV_*; kvErrorFromNative turns those into these classes, and kv-payload.ts throws them
 * itself when it checks a header before any native call. Registered for the wire like the engine's.
 */
import { EngineError, registerWireErrors } from '../errors.js';

/** Base class: a KV payload cannot be imported here. `problem` names what differs. */
export class KvTransferError extends EngineError {
  override readonly code: string = 'E_KV_TRANSFER';
  override readonly status: number = 400;
}

/** Not a KV payload: no header, another format version, truncated, or counts that disagree. */
export class KvPayloadError extends KvTransferError {
  override readonly code: string = 'E_KV_FORMAT';
}

/** The payload was computed by another model (fingerprint or shape differs): its K/V would be wrong here. */
export class KvModelMismatchError extends KvTransferError {
  override readonly code: string = 'E_KV_MODEL';
}

/** The payload's K/V element type (f32, f16, ...) is not this engine's pool's. */
export class KvDtypeMismatchError extends KvTransferError {
  override readonly code: string = 'E_KV_DTYPE';
}

/** The payload's tokens per block differ from this engine's. */
export class KvBlockSizeMismatchError extends KvTransferError {
  override readonly code: string = 'E_KV_BLOCK_SIZE';
}

/** A prefill() request was aborted (signal, abort(), dispose) before its KV was exported; its blocks are freed. */
export class PrefillAbortedError extends EngineError {
  override readonly code: string = 'E_PREFILL_ABORTED';
  override readonly status: number = 499;
}

export const kvErrorClasses = {
  KvTransferError,
  KvPayloadError,
  KvModelMismatchError,
  KvDtypeMismatchError,
  KvBlockSizeMismatchError,
  PrefillAbortedError,
} as const;

registerWireErrors(kvErrorClasses);

const byCode: Record<string, new (message: string, data?: Record<string, unknown>) => KvTransferError> = {
  E_KV_FORMAT: KvPayloadError,
  E_KV_MODEL: KvModelMismatchError,
  E_KV_DTYPE: KvDtypeMismatchError,
  E_KV_BLOCK_SIZE: KvBlockSizeMismatchError,
};

/** A native rejection as its typed class when it is a payload mismatch; anything else as it came. */
export function kvErrorFromNative(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  const Cls = typeof code === 'string' ? byCode[code] : undefined;
  return Cls ? new Cls((err as Error).message) : err;
}
