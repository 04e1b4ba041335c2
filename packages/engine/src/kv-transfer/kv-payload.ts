/**
 * The KV payload's header in TypeScript (native/src/core/kv-payload.h writes it): read without the
 * addon, so a decode engine refuses a mismatched payload synchronously, and transports or benches can
 * size it. Little-endian, 64 bytes, then numBlocks x blockBytes of K/V.
 */
import { KvBlockSizeMismatchError, KvDtypeMismatchError, KvModelMismatchError, KvPayloadError } from './kv-errors.js';

export const KV_HEADER_BYTES = 64;
export const KV_PAYLOAD_VERSION = 1;
const MAGIC = 0x564b4c46; // "FLKV" read as a little-endian u32

/** Element types of a pool, by the header's code. */
export const KV_DTYPES = ['f32', 'f16'] as const;

export interface KvPayloadHeader {
  version: number;
  /** 16 hex digits (NativeModel.kvFingerprint). */
  fingerprint: string;
  dtype: string;
  blockSize: number;
  nLayers: number;
  nKvHeads: number;
  headDim: number;
  /** Tokens whose K/V the payload holds (its last block partly filled). */
  numTokens: number;
  numBlocks: number;
  blockBytes: number;
}

/** What a pool must agree with: NativeModel's kvFingerprint, kvDtype, blockSize and config. */
export interface KvPoolShape {
  fingerprint: string;
  dtype: string;
  blockSize: number;
  nLayers: number;
  nKvHeads: number;
  headDim: number;
  blockBytes: number;
}

/** Parses the header; KvPayloadError when `bytes` is not a whole version-1 payload. */
export function readKvHeader(bytes: Uint8Array): KvPayloadHeader {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < KV_HEADER_BYTES)
    throw new KvPayloadError('not a KV payload: shorter than its 64-byte header');
  const v = new DataView(bytes.buffer, bytes.byteOffset, KV_HEADER_BYTES);
  if (v.getUint32(0, true) !== MAGIC) throw new KvPayloadError('not a KV payload (no FLKV header)');
  const version = v.getUint32(4, true);
  if (version !== KV_PAYLOAD_VERSION)
    throw new KvPayloadError(`KV payload format version ${version}; this engine reads ${KV_PAYLOAD_VERSION}`);
  const hex = (at: number) => v.getUint32(at, true).toString(16).padStart(8, '0');
  const dtypeCode = v.getUint32(16, true);
  const h: KvPayloadHeader = {
    version,
    fingerprint: hex(12) + hex(8),
    dtype: KV_DTYPES[dtypeCode] ?? `code ${dtypeCode}`,
    blockSize: v.getUint32(20, true),
    nLayers: v.getUint32(24, true),
    nKvHeads: v.getUint32(28, true),
    headDim: v.getUint32(32, true),
    numTokens: v.getUint32(36, true),
    numBlocks: v.getUint32(40, true),
    blockBytes: Number(v.getBigUint64(48, true)),
  };
  if (h.blockSize < 1 || h.numTokens < 1 || h.numBlocks !== Math.ceil(h.numTokens / h.blockSize))
    throw new KvPayloadError(`KV payload: ${h.numTokens} tokens and ${h.numBlocks} blocks of ${h.blockSize} disagree`);
  const want = KV_HEADER_BYTES + h.numBlocks * h.blockBytes;
  if (bytes.byteLength !== want)
    throw new KvPayloadError(`KV payload is ${bytes.byteLength} bytes; its header says ${want}`);
  return h;
}

/** Throws the typed error for the first way `h` does not fit `pool` (the native import checks the same). */
export function checkKvHeader(h: KvPayloadHeader, pool: KvPoolShape): void {
  if (h.fingerprint !== pool.fingerprint)
    throw new KvModelMismatchError(
      `the KV payload was computed by another model (fingerprint ${h.fingerprint}, this engine's ${pool.fingerprint})`,
      { theirs: h.fingerprint, ours: pool.fingerprint },
    );
  if (h.nLayers !== pool.nLayers || h.nKvHeads !== pool.nKvHeads || h.headDim !== pool.headDim)
    throw new KvModelMismatchError(
      "the KV payload's shape (layers, KV heads, head dim) differs from this engine's model",
    );
  if (h.dtype !== pool.dtype)
    throw new KvDtypeMismatchError(`the KV payload holds ${h.dtype} K/V, this engine's pool ${pool.dtype}`, {
      theirs: h.dtype,
      ours: pool.dtype,
    });
  if (h.blockSize !== pool.blockSize)
    throw new KvBlockSizeMismatchError(
      `the KV payload has ${h.blockSize} tokens per block, this engine ${pool.blockSize}`,
      { theirs: h.blockSize, ours: pool.blockSize },
    );
  if (h.blockBytes !== pool.blockBytes)
    throw new KvPayloadError(`the KV payload has ${h.blockBytes} bytes per block, this engine ${pool.blockBytes}`);
}

/** Bytes of a payload of `numTokens` tokens in blocks of `blockSize` tokens and `blockBytes` bytes. */
export function kvPayloadBytes(numTokens: number, blockSize: number, blockBytes: number): number {
  return KV_HEADER_BYTES + Math.ceil(numTokens / blockSize) * blockBytes;
}
