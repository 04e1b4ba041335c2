/**
 * The addon's module-level surface (NativeBinding): it loads through load-native.ts, reports the CPU,
 * measures bandwidth, and rejects (never throws) a loadModel call with bad options.
 */
import { describe, expect, it } from 'vitest';
import { loadNative, NativeAddonError } from '../../packages/engine/src/native/load-native.js';

describe('native binding', () => {
  it('loads once and reports CPU features', () => {
    const b = loadNative();
    expect(loadNative()).toBe(b);
    const f = b.cpuFeatures();
    expect(typeof f.avx2).toBe('boolean');
    expect(f.threads).toBeGreaterThanOrEqual(1);
    expect(typeof b.hasCuda).toBe('boolean'); // true where nvcc built the CUDA backend in (native/build.mjs)
  });

  it('measures a positive read bandwidth', () => {
    expect(loadNative().measureReadBandwidth(8 << 20)).toBeGreaterThan(1e8);
  });

  it('rejects loadModel without options with a typed error', async () => {
    await expect(loadNative().loadModel(undefined as never)).rejects.toMatchObject({ code: 'E_SHAPE' });
    await expect(loadNative().loadModel({} as never)).rejects.toMatchObject({ code: 'E_SHAPE' });
  });

  it('names how to build the addon in its error class', () => {
    const e = new NativeAddonError('x');
    expect(e.code).toBe('E_NATIVE_ADDON');
    expect(e).toBeInstanceOf(Error);
  });
});
