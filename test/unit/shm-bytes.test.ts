/** shm-bytes.ts on real /dev/shm files: which arrays move, the round trip, cleanup, and forged paths refused. */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SHM_MIN_BYTES, ShmFiles, unpackShm } from '../../packages/core/src/actor/shm-bytes.js';

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 255);
const KEY = '__flotillaShm';

describe.skipIf(!existsSync('/dev/shm'))('shared-memory byte arrays', () => {
  it('moves marked large arrays into files and back, leaving small and unmarked ones in the message', () => {
    const big = bytes(SHM_MIN_BYTES + 7, 1);
    const unmarked = bytes(SHM_MIN_BYTES, 2);
    const small = bytes(100, 3);
    const msg = { type: 'result', id: 1, value: { kv: big, other: unmarked, small, list: [big] } };
    const files = new ShmFiles();
    const packed = files.pack(msg, [big.buffer as ArrayBuffer, small.buffer as ArrayBuffer]) as typeof msg & {
      shm: boolean;
    };
    expect(packed).not.toBeNull();
    expect(msg.value.kv).toBe(big); // the input is not changed
    const ph = packed.value.kv as unknown as Record<string, string>;
    expect(ph[KEY]).toMatch(/^\/dev\/shm\/flotilla-kv-/);
    expect(existsSync(ph[KEY]!)).toBe(true);
    expect(packed.value.other).toBe(unmarked);
    expect(packed.value.small).toBe(small);
    const back = unpackShm(structuredClone(packed));
    expect(Buffer.from(back.value.kv).equals(Buffer.from(big))).toBe(true);
    expect(Buffer.from(back.value.list[0]!).equals(Buffer.from(big))).toBe(true);
    expect(existsSync(ph[KEY]!)).toBe(false);
    expect((back as { shm?: boolean }).shm).toBeUndefined();
  });

  it('returns null when nothing qualifies, and cleanup() removes files nobody read', () => {
    const files = new ShmFiles();
    expect(files.pack({ type: 'result', id: 1, value: bytes(10, 0) }, undefined)).toBeNull();
    const big = bytes(SHM_MIN_BYTES, 4);
    const packed = files.pack({ type: 'result', id: 2, value: big }, [big.buffer as ArrayBuffer])!;
    const file = (packed.value as unknown as Record<string, string>)[KEY]!;
    expect(existsSync(file)).toBe(true);
    files.cleanup();
    expect(existsSync(file)).toBe(false);
  });

  it('refuses a placeholder naming a file outside its scheme', () => {
    expect(() => unpackShm({ type: 'result', id: 1, shm: true, value: { [KEY]: '/etc/passwd' } })).toThrow(/refusing/);
  });
});
