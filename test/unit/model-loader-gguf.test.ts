import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UnsupportedModelError } from '../../packages/engine/src/errors.js';
import { readGgufFile } from '../../packages/engine/src/model-loader/gguf-file.js';
import { canonicalName, ggufName } from '../../packages/engine/src/model-loader/gguf-reader.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'flotilla-gguf-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Hand-assembled GGUF bytes, independent of the writer under test. */
class Raw {
  parts: Buffer[] = [];
  put(n: number, f: (b: Buffer) => void) {
    const b = Buffer.alloc(n);
    f(b);
    this.parts.push(b);
    return this;
  }
  u8(v: number) {
    return this.put(1, (b) => b.writeUInt8(v));
  }
  u32(v: number) {
    return this.put(4, (b) => b.writeUInt32LE(v));
  }
  u64(v: bigint | number) {
    return this.put(8, (b) => b.writeBigUInt64LE(BigInt(v)));
  }
  str(s: string) {
    const b = Buffer.from(s);
    this.u64(b.length);
    this.parts.push(b);
    return this;
  }
  kv(key: string, type: number, body: (r: Raw) => void) {
    this.str(key).u32(type);
    body(this);
    return this;
  }
  bytes() {
    return Buffer.concat(this.parts);
  }
}

function header(version: number, nTensors: number, nKv: number): Raw {
  return new Raw()
    .put(4, (b) => b.write('GGUF'))
    .u32(version)
    .u64(nTensors)
    .u64(nKv);
}

describe('GGUF container', () => {
  it('reads every metadata value type, arrays included, in v2 and v3', () => {
    for (const version of [2, 3]) {
      const r = header(version, 1, 15)
        .kv('u8', 0, (x) => x.u8(200))
        .kv('i8', 1, (x) => x.put(1, (b) => b.writeInt8(-5)))
        .kv('u16', 2, (x) => x.put(2, (b) => b.writeUInt16LE(60000)))
        .kv('i16', 3, (x) => x.put(2, (b) => b.writeInt16LE(-300)))
        .kv('u32', 4, (x) => x.u32(4e9))
        .kv('i32', 5, (x) => x.put(4, (b) => b.writeInt32LE(-7)))
        .kv('f32', 6, (x) => x.put(4, (b) => b.writeFloatLE(0.5)))
        .kv('bool', 7, (x) => x.u8(1))
        .kv('str', 8, (x) => x.str('héllo'))
        .kv('u64', 10, (x) => x.u64(2n ** 60n))
        .kv('i64', 11, (x) => x.put(8, (b) => b.writeBigInt64LE(-3n)))
        .kv('f64', 12, (x) => x.put(8, (b) => b.writeDoubleLE(Math.PI)))
        .kv('arr.u64', 9, (x) => x.u32(10).u64(2).u64(1).u64(2))
        .kv('arr.bool', 9, (x) => x.u32(7).u64(3).u8(1).u8(0).u8(1))
        .kv('arr.nested', 9, (x) => x.u32(9).u64(2).u32(8).u64(1).str('a').u32(8).u64(2).str('b').str('c'))
        .kv('general.alignment', 4, (x) => x.u32(64));
      // fix the kv count (16) and add one tensor info: 'token_embd.weight' dims (8, 4) F32 at 0
      const bytes = r.str('token_embd.weight').u32(2).u64(8).u64(4).u32(0).u64(0).bytes();
      bytes.writeBigUInt64LE(16n, 16);
      const headerEnd = bytes.length;
      const file = path.join(tmp, `v${version}.gguf`);
      writeFileSync(file, Buffer.concat([bytes, Buffer.alloc(64 - (headerEnd % 64) + 128)]));
      const g = readGgufFile(file);
      const md = g.metadata;
      expect(g.version).toBe(version);
      expect([
        md.get('u8'),
        md.get('i8'),
        md.get('u16'),
        md.get('i16'),
        md.get('u32'),
        md.get('i32'),
        md.get('f32'),
        md.get('bool'),
        md.get('str'),
      ]).toEqual([200, -5, 60000, -300, 4e9, -7, 0.5, true, 'héllo']);
      expect(md.get('u64')).toBe(2n ** 60n); // beyond 2^53 stays bigint
      expect([md.get('i64'), md.get('f64')]).toEqual([-3, Math.PI]);
      expect([...(md.get('arr.u64') as BigUint64Array)]).toEqual([1n, 2n]);
      expect(md.get('arr.bool')).toEqual([true, false, true]);
      expect(md.get('arr.nested')).toEqual([['a'], ['b', 'c']]);
      expect(g.alignment).toBe(64);
      expect(g.dataOffset).toBe(Math.ceil(headerEnd / 64) * 64);
      expect(g.tensors).toEqual([{ name: 'token_embd.weight', dims: [8, 4], type: 0, offset: g.dataOffset }]);
    }
  });

  it('rejects v1 and big-endian files as unsupported', () => {
    const v1 = path.join(tmp, 'v1.gguf');
    writeFileSync(v1, header(1, 0, 0).bytes());
    expect(() => readGgufFile(v1)).toThrow(UnsupportedModelError);
    const be = path.join(tmp, 'be.gguf');
    writeFileSync(be, header(0x03000000, 0, 0).bytes());
    expect(() => readGgufFile(be)).toThrow(/big-endian/);
  });

  it('maps tensor names both ways', () => {
    expect(canonicalName('blk.12.attn_output.weight')).toBe('layers.12.wo');
    expect(canonicalName('blk.0.ffn_gate.weight')).toBe('layers.0.w1');
    expect(canonicalName('rope_freqs.weight')).toBeUndefined();
    expect(ggufName('layers.3.w2')).toBe('blk.3.ffn_down.weight');
    expect(ggufName('tok_embeddings')).toBe('token_embd.weight');
  });
});
