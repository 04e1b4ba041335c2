/**
 * HybridRouter and ResponseCache through real deployments: LLMServer replicas on stories260K in a
 * thread and a child process. The router sends hard prompts to the large model and falls back to the
 * small one when the large one's replica throws, opening its circuit; the cache answers repeated
 * deterministic requests byte-identically and never serves a sampled one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, type ServeInstance } from '@flotilla/core';
import { tryLoadNative } from '../fixtures/native-addon.js';
import { describeWithModels, models } from '../helpers/models.js';
import { cacheApp, hybridApp } from '../fixtures/apps/hybrid-apps.js';

const native = await tryLoadNative();

describeWithModels('HybridRouter and ResponseCache over LLMServer deployments', () => {
  describe.skipIf(!native.binding)('deployments', () => {
    let instance: ServeInstance;
    beforeAll(async () => {
      instance = await startServe({
        applications: [
          { name: 'hybrid', routePrefix: '/hybrid', app: hybridApp(models.stories260K) },
          { name: 'cache', routePrefix: '/cache', app: cacheApp(models.stories260K) },
        ],
      });
    }, 120_000);
    afterAll(async () => {
      await instance?.shutdown();
    });

    it("passes the request's own errors through: a 400 is neither retried nor a model failure", async () => {
      const router = instance.getHandle('hybrid');
      const err = await router.generate({ prompt: 'Sara had a red ball', temperature: 9, max_tokens: 4 }).then(
        () => null,
        (e: unknown) => e as { httpStatus?: number; code?: string },
      );
      expect(err?.httpStatus).toBe(400);
      expect(err?.code).toBe('BAD_REQUEST');
      const stats = await router.routerStats();
      expect(stats.failures).toEqual({});
      expect(stats.decisions).toEqual({});
      expect(stats.breakers).toMatchObject({ small: 'closed', large: 'closed' });
    }, 60_000);

    it('routes by the heuristic, then falls back to the small model when the large one fails', async () => {
      const router = instance.getHandle('hybrid');
      const large = instance.getHandle('hybrid', 'HybridLarge');
      const easy = { prompt: 'Sara had a red ball', temperature: 0, max_tokens: 8 };
      const hard = { prompt: 'Explain why the sky is blue, step by step', temperature: 0, max_tokens: 8 };
      const a = (await router.generate(easy)) as { choices: Array<{ text: string }> };
      const b = (await router.generate(hard)) as { choices: Array<{ text: string }> };
      expect(a.choices[0]!.text.length).toBeGreaterThan(0);
      expect(b.choices[0]!.text.length).toBeGreaterThan(0);
      expect((await router.routerStats()).decisions).toEqual({ 'small/classifier': 1, 'large/classifier': 1 });

      await large.setFailing(true);
      const c = (await router.generate(hard)) as { choices: Array<{ text: string }> };
      expect(c.choices[0]!.text).toBe(b.choices[0]!.text); // same model file, greedy: same answer from the fallback
      let stats = await router.routerStats();
      expect(stats.decisions['small/fallback']).toBe(1);
      expect(stats.failures).toEqual({ large: 2 }); // first try + one retry
      expect(stats.breakers.large).toBe('open');
      // Open circuit: the large model is not called again.
      await router.generate(hard);
      stats = await router.routerStats();
      expect(stats.decisions['small/fallback']).toBe(2);
      expect(stats.failures).toEqual({ large: 2 });
    }, 60_000);

    it('answers repeated greedy requests from the cache, byte-identical, and never caches sampled ones', async () => {
      const cache = instance.getHandle('cache');
      const req = { prompt: 'Lily and Tom went to the park', temperature: 0, max_tokens: 12 };
      const first = await cache.generate(req);
      const second = await cache.generate({ ...req });
      expect(JSON.stringify(second)).toBe(JSON.stringify(first));
      const other = await cache.generate({ ...req, max_tokens: 11 });
      expect(JSON.stringify(other)).not.toBe(JSON.stringify(first));
      const sampled = { prompt: 'Lily and Tom went to the park', temperature: 1, max_tokens: 12 };
      await cache.generate(sampled);
      await cache.generate(sampled);
      expect(await cache.cacheStats()).toEqual({ hits: 1, misses: 2, bypasses: 2, entries: 2 });
    }, 60_000);
  });
});
