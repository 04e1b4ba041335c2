/** examples/speculative.ts, examples/hybrid-router.ts and examples/cached-llm.ts start as `serve run` would and answer. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, type ServeInstance } from '@flotilla/core';
import { tryLoadNative } from '../fixtures/native-addon.js';
import { describeWithModels } from '../helpers/models.js';
import { app as speculativeApp } from '../../examples/speculative.js';
import { app as hybridApp } from '../../examples/hybrid-router.js';
import { app as cachedApp } from '../../examples/cached-llm.js';

const native = await tryLoadNative();

describeWithModels('speculative and hybrid examples', () => {
  describe.skipIf(!native.binding)('examples', () => {
    let instance: ServeInstance;
    beforeAll(async () => {
      instance = await startServe({
        applications: [
          { name: 'spec', routePrefix: '/spec', app: speculativeApp({ k: '3' }) },
          { name: 'hybrid', routePrefix: '/hybrid', app: hybridApp() },
          { name: 'cached', routePrefix: '/cached', app: cachedApp() },
        ],
      });
    }, 120_000);
    afterAll(async () => {
      await instance?.shutdown();
    });

    it('examples/speculative.ts streams a completion', async () => {
      let text = '';
      for await (const c of instance
        .getHandle('spec')
        .stream.generate({ prompt: 'Once upon a time', params: { temperature: 0, maxTokens: 24 } }))
        text += c.text;
      expect(text.length).toBeGreaterThan(10);
    }, 60_000);

    it('examples/hybrid-router.ts answers through the cache and the router, the second time from the cache', async () => {
      const h = instance.getHandle('hybrid');
      const req = { prompt: 'Sara had a red ball', temperature: 0, max_tokens: 12 };
      const a = await h.generate(req);
      const b = await h.generate(req);
      expect(JSON.stringify(b)).toBe(JSON.stringify(a));
      expect(await h.cacheStats()).toMatchObject({ hits: 1, misses: 1 });
    }, 60_000);

    it('examples/cached-llm.ts serves a repeated greedy request from the cache and never a sampled one', async () => {
      const h = instance.getHandle('cached');
      const req = { prompt: 'Once upon a time', temperature: 0, max_tokens: 12 };
      const a = await h.generate(req);
      const b = await h.generate(req);
      expect(JSON.stringify(b)).toBe(JSON.stringify(a));
      await h.generate({ prompt: 'Once upon a time', temperature: 1, max_tokens: 12 });
      expect(await h.cacheStats()).toMatchObject({ hits: 1, misses: 1, bypasses: 1 });
    }, 60_000);
  });
});
