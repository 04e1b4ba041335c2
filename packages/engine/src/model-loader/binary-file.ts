/**
 * Header-only file access for the readers: reads exactly the bytes asked for with fs.read, never a whole
 * weights file, and turns short reads and missing files into ModelFormatError naming the file.
 */
import { openSync, readSync, closeSync, fstatSync, statSync } from 'node:fs';
import { ModelFormatError } from '../errors.js';

/** Reads `length` bytes at `offset`; a file shorter than that is "truncated". */
export function readBytesAt(file: string, offset: number, length: number, what = 'header'): Buffer {
  const fd = openOrThrow(file);
  try {
    const size = fstatSync(fd).size;
    if (offset + length > size) {
      throw new ModelFormatError(
        file,
        `truncated: ${what} needs bytes ${offset}..${offset + length} but the file has ${size}`,
      );
    }
    return readFully(fd, offset, length);
  } finally {
    closeSync(fd);
  }
}

/** Size of a file in bytes, or ModelFormatError when it does not exist. */
export function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    throw new ModelFormatError(file, 'file not found');
  }
}

export function openOrThrow(file: string): number {
  try {
    return openSync(file, 'r');
  } catch (err) {
    throw new ModelFormatError(file, `cannot open (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

function readFully(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, offset + done);
    if (n === 0) break;
    done += n;
  }
  return buf.subarray(0, done);
}

/**
 * Sequential little-endian reader over a file for variable-length headers (GGUF): refills a window
 * with fs.read as it goes, so a header of any size costs only its own bytes.
 */
export class FileCursor {
  readonly size: number;
  private fd: number;
  private buf: Buffer = Buffer.alloc(0);
  private bufStart = 0;
  /** Absolute byte position of the next read. */
  pos = 0;

  constructor(
    readonly file: string,
    private readonly chunk = 1 << 20,
  ) {
    this.fd = openOrThrow(file);
    this.size = fstatSync(this.fd).size;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** Bytes left from the cursor to the end of the file. */
  remaining(): number {
    return this.size - this.pos;
  }

  /** Makes `n` bytes at the cursor available and returns their offset inside the window. */
  private ensure(n: number, what: string): number {
    if (this.pos + n > this.size) {
      throw new ModelFormatError(
        this.file,
        `truncated: ${what} at byte ${this.pos} needs ${n} bytes, the file has ${this.size}`,
      );
    }
    const rel = this.pos - this.bufStart;
    if (rel >= 0 && rel + n <= this.buf.length) return rel;
    this.buf = readFully(this.fd, this.pos, Math.min(Math.max(n, this.chunk), this.size - this.pos));
    this.bufStart = this.pos;
    return 0;
  }

  bytes(n: number, what = 'bytes'): Buffer {
    const at = this.ensure(n, what);
    this.pos += n;
    return this.buf.subarray(at, at + n);
  }
  u8(what = 'u8'): number {
    const at = this.ensure(1, what);
    this.pos += 1;
    return this.buf.readUInt8(at);
  }
  i8(what = 'i8'): number {
    const at = this.ensure(1, what);
    this.pos += 1;
    return this.buf.readInt8(at);
  }
  u16(what = 'u16'): number {
    const at = this.ensure(2, what);
    this.pos += 2;
    return this.buf.readUInt16LE(at);
  }
  i16(what = 'i16'): number {
    const at = this.ensure(2, what);
    this.pos += 2;
    return this.buf.readInt16LE(at);
  }
  u32(what = 'u32'): number {
    const at = this.ensure(4, what);
    this.pos += 4;
    return this.buf.readUInt32LE(at);
  }
  i32(what = 'i32'): number {
    const at = this.ensure(4, what);
    this.pos += 4;
    return this.buf.readInt32LE(at);
  }
  f32(what = 'f32'): number {
    const at = this.ensure(4, what);
    this.pos += 4;
    return this.buf.readFloatLE(at);
  }
  f64(what = 'f64'): number {
    const at = this.ensure(8, what);
    this.pos += 8;
    return this.buf.readDoubleLE(at);
  }
  u64(what = 'u64'): bigint {
    const at = this.ensure(8, what);
    this.pos += 8;
    return this.buf.readBigUInt64LE(at);
  }
  i64(what = 'i64'): bigint {
    const at = this.ensure(8, what);
    this.pos += 8;
    return this.buf.readBigInt64LE(at);
  }

  /** A u64 that must fit a JS number (counts, lengths, offsets). */
  u64n(what = 'u64'): number {
    const v = this.u64(what);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ModelFormatError(this.file, `${what} ${v} is implausibly large`);
    return Number(v);
  }
}
