/**
 * The KV handoff across real actors: a thread replica's engine prefills, a process replica's engine
 * decodes, the handoff carried by handles (moved out of the thread, through /dev/shm into the process;
 * and thread → process over the direct socket link from a front). Greedy and seeded output equal one
 * engine's in this process, and both replicas end with every block free.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, transfer, type ServeInstance } from '@flotilla/core';
import { KvModelMismatchError } from '../../packages/engine/src/kv-transfer/kv-errors.js';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import { app } from '../fixtures/apps/kv-handoff-actors.js';
import { run } from '../helpers/engine-suite.js';
import { models } from '../helpers/models.js';

const prompt =
  'Once upon a time, there was a little dog. He liked to run in the park with his friend Tom. One day, Tom saw a big red ball.';

describe('KV handoff between a thread replica and a process replica', () => {
  let instance: ServeInstance;
  let single: LLMEngine;
  beforeAll(async () => {
    instance = await startServe({ applications: [{ name: 'pd', app: app() }], checkpoint: false });
    single = await LLMEngine.create({ model: models.stories260K, numThreads: 1, device: 'cpu', guidedDecoding: false });
  });
  afterAll(async () => {
    await single?.dispose();
    await instance?.shutdown();
  });

  it('greedy and seeded output equal one engine, through handles and through a front', async () => {
    const pre = instance.getHandle('pd', 'PrefillWorker');
    const dec = instance.getHandle('pd', 'DecodeWorker');
    for (const params of [
      { temperature: 0, maxTokens: 30, ignoreEos: true },
      { temperature: 0.8, topP: 0.95, seed: 42, maxTokens: 30, ignoreEos: true },
    ]) {
      const ref = await run(single, prompt, params);
      const h = await pre.prefill(prompt, params);
      expect(h.kv).toBeInstanceOf(Uint8Array);
      const rest = await dec.decode(transfer(h, [h.kv.buffer]));
      expect([h.firstTokenId, ...rest.tokenIds]).toEqual(ref.tokenIds);
      expect(rest.text).toBe(ref.text);
      const viaFront = await instance.getHandle('pd').run(prompt, params);
      expect(viaFront.tokenIds).toEqual(ref.tokenIds);
    }
    // A payload from another model: refused in the process replica, rebuilt here as the same class.
    const h = await pre.prefill(prompt, { temperature: 0, maxTokens: 8 });
    h.kv[8] ^= 0xff; // a fingerprint byte
    await expect(dec.decode(h)).rejects.toBeInstanceOf(KvModelMismatchError);
    await expect(dec.decode(h)).rejects.toMatchObject({ code: 'E_KV_MODEL' });
    for (const handle of [pre, dec]) {
      const b = await handle.blocks();
      expect(b.free).toBe(b.total);
    }
  });
});
