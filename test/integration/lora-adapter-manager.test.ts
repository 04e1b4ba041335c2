/**
 * AdapterManager over a fake native model that records its calls (real PEFT files from the writer):
 * a failed native load leaves nothing registered; unloading an adapter in use frees its slot only when
 * the last lease ends, and a waiting lease then gets the slot; native calls on one slot keep their order
 * (an unload issued behind a load in flight runs after it, and a later load after both).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdapterManager, type LoraModel } from '../../packages/engine/src/lora/adapter-manager.js';
import { AdapterMismatchError, AdapterNotFoundError } from '../../packages/engine/src/lora/errors.js';
import { writeRandomAdapter } from '../../packages/engine/src/model-loader/writers/peft-writer.js';
import type { NativeLoraSpec, NativeModelConfig } from '../../packages/engine/src/native/native-types.js';

const config: NativeModelConfig = {
  dim: 32,
  hiddenDim: 48,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 4,
  vocabSize: 300,
  maxSeqLen: 64,
  ropeTheta: 10000,
  ropeLayout: 'half',
  normEps: 1e-5,
  tiedEmbeddings: true,
};

class FakeModel implements LoraModel {
  calls: string[] = [];
  failNext = false;
  private gates: (() => void)[] = [];
  /** While true, loads wait for release() (to observe ordering). */
  hold = false;
  async loadLora(slot: number, spec: NativeLoraSpec): Promise<void> {
    this.calls.push(`load ${slot} ${path.basename(path.dirname(spec.files[0]!))}`);
    if (this.hold) await new Promise<void>((r) => this.gates.push(r));
    if (this.failNext) {
      this.failNext = false;
      throw Object.assign(new Error('E_SHAPE: bad'), { code: 'E_SHAPE' });
    }
  }
  async unloadLora(slot: number): Promise<void> {
    this.calls.push(`unload ${slot}`);
  }
  release(): void {
    this.hold = false;
    for (const g of this.gates.splice(0)) g();
  }
}

describe('AdapterManager', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flotilla-adapter-manager-'));
  const ad = (n: string) => path.join(dir, n);
  beforeAll(async () => {
    for (const [i, n] of ['a', 'b', 'c'].entries()) {
      mkdirSync(ad(n));
      await writeRandomAdapter(ad(n), config, { rank: 4, seed: i });
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a failed native load leaves nothing registered', async () => {
    const model = new FakeModel();
    const m = new AdapterManager(model, config, 1, 8);
    model.failNext = true;
    await expect(m.load('a', ad('a'))).rejects.toBeInstanceOf(AdapterMismatchError);
    expect(m.list()).toEqual([]);
    await m.load('a', ad('a'));
    expect(m.list().map((x) => [x.name, x.resident])).toEqual([['a', true]]);
  });

  it('unloading an adapter in use frees its slot at the last release; a waiting lease then gets it', async () => {
    const model = new FakeModel();
    const m = new AdapterManager(model, config, 1, 8);
    await m.load('a', ad('a'));
    await m.load('b', ad('b')); // no idle slot? a is idle: evicted, b resident
    expect(m.list().map((x) => [x.name, x.resident])).toEqual([
      ['a', false],
      ['b', true],
    ]);
    const lease = m.acquire('b');
    expect(lease).not.toBeInstanceOf(Promise); // resident: at once
    const waiting = m.acquire('a'); // the only slot is pinned by b
    expect(waiting).toBeInstanceOf(Promise);
    await m.unload('b');
    expect(() => m.acquire('b')).toThrow(AdapterNotFoundError);
    expect(model.calls).not.toContain('unload 0'); // b's request still runs
    m.release(lease as Exclude<typeof lease, Promise<unknown>>);
    const got = await waiting;
    expect(got.slot).toBe(0);
    expect(model.calls.slice(-2)).toEqual(['unload 0', 'load 0 a']); // b's slot emptied, then a loaded into it
    m.release(got);
  });

  it('native calls on one slot run in the order they were issued', async () => {
    const model = new FakeModel();
    const m = new AdapterManager(model, config, 1, 8);
    model.hold = true;
    const loadA = m.load('a', ad('a'));
    await Promise.resolve();
    const unloadA = m.unload('a').catch(() => {});
    const loadC = m.load('c', ad('c'));
    await new Promise((r) => setTimeout(r, 10));
    expect(model.calls).toEqual(['load 0 a']); // the rest waits behind it
    model.release();
    await Promise.all([loadA, unloadA, loadC]);
    // c found the slot pinned by a's load: registered, not resident; a's slot is emptied once its load ends
    expect(model.calls).toEqual(['load 0 a', 'unload 0']);
    expect(m.list().map((x) => [x.name, x.resident])).toEqual([['c', false]]);
    m.release(await m.acquire('c'));
    expect(model.calls).toEqual(['load 0 a', 'unload 0', 'load 0 c']);
  });
});
