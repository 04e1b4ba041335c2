/**
 * The KV cache's element type as vLLM names the option (`kv_cache_dtype`; NativeLoadOptions.kvDtype):
 * 'auto' (the model's dtype: f16 for a model held in f16, else f32), 'f32', 'f16', 'int8' (the CPU
 * backend: one byte per element and an f32 scale per token and head, native/src/core/kv-type.h) and
 * 'fp8' (e4m3 with the same per-row scales, the CUDA backend; 'fp8_e4m3' is vLLM's other spelling).
 */
import { EngineError, registerWireErrors } from './errors.js';

export const KV_CACHE_DTYPES = ['auto', 'f32', 'f16', 'int8', 'fp8', 'fp8_e4m3'] as const;
export type KvCacheDtype = (typeof KV_CACHE_DTYPES)[number];

/** kv_cache_dtype is not one of KV_CACHE_DTYPES, or not one the chosen backend stores (fp8 on the CPU, int8 on CUDA). */
export class KvCacheDtypeError extends EngineError {
  override readonly code: string = 'E_KV_CACHE_DTYPE';
  override readonly status: number = 400;
  /** The option at fault, in vLLM's spelling. */
  readonly param = 'kv_cache_dtype';
  readonly value: string;
  constructor(value: string, message?: string) {
    super(message ?? `kv_cache_dtype must be one of ${KV_CACHE_DTYPES.join(', ')}, got ${value}`, {
      param: 'kv_cache_dtype',
      value,
    });
    this.value = value;
  }
}

export function isKvCacheDtype(value: unknown): value is KvCacheDtype {
  return typeof value === 'string' && (KV_CACHE_DTYPES as readonly string[]).includes(value);
}

/** The value when it names a KV cache dtype; a KvCacheDtypeError otherwise. */
export function checkKvCacheDtype(value: unknown): KvCacheDtype {
  if (!isKvCacheDtype(value)) throw new KvCacheDtypeError(String(value));
  return value;
}

/**
 * The addon refuses a dtype its backend does not store with E_DTYPE and a message starting "kvDtype";
 * that becomes a KvCacheDtypeError (same message), anything else is returned as it was.
 */
export function asKvCacheDtypeError(err: unknown, value: string | undefined): unknown {
  const e = err as { code?: string; message?: string };
  if (value !== undefined && e?.code === 'E_DTYPE' && e.message?.startsWith('kvDtype'))
    return new KvCacheDtypeError(value, e.message);
  return err;
}

export const kvCacheDtypeErrorClasses = { KvCacheDtypeError } as const;

registerWireErrors(kvCacheDtypeErrorClasses);
