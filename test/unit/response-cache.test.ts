import { describe, expect, it } from 'vitest';
import { cacheKey, isDeterministic, LruTtlCache } from '../../packages/deployments/src/response-cache.js';

describe('LruTtlCache (fake clock)', () => {
  it('evicts the least recently used entry beyond maxEntries', () => {
    const c = new LruTtlCache<number>({ maxEntries: 2, now: () => 0 });
    c.set('a', 1);
    c.set('b', 2);
    expect(c.get('a')).toBe(1); // a is now most recent
    c.set('c', 3);
    expect([c.get('a'), c.get('b'), c.get('c')]).toEqual([1, undefined, 3]);
  });

  it('bounds total bytes and refuses an entry larger than the bound', () => {
    const c = new LruTtlCache<string>({ maxBytes: 10, now: () => 0 });
    c.set('a', 'x', 4);
    c.set('b', 'y', 4);
    c.set('c', 'z', 4);
    expect([c.get('a'), c.get('b'), c.get('c'), c.bytes]).toEqual([undefined, 'y', 'z', 8]);
    expect(c.set('big', 'w', 11)).toBe(false);
    expect(c.size).toBe(2);
  });

  it('expires entries after ttlMs', () => {
    const clock = { t: 0 };
    const c = new LruTtlCache<number>({ ttlMs: 100, now: () => clock.t });
    c.set('a', 1, 5);
    clock.t = 99;
    expect(c.get('a')).toBe(1);
    clock.t = 100;
    expect(c.get('a')).toBeUndefined();
    expect([c.size, c.bytes]).toEqual([0, 0]);
  });
});

describe('cache keys', () => {
  it('depend on model, prompt and sampling parameters, not on field order or credentials', () => {
    const a = cacheKey({ prompt: 'hi', temperature: 0, max_tokens: 5, model: 'm' });
    expect(cacheKey({ model: 'm', max_tokens: 5, temperature: 0, prompt: 'hi', api_key: 'k' })).toBe(a);
    expect(cacheKey({ model: 'm', max_tokens: 6, temperature: 0, prompt: 'hi' })).not.toBe(a);
    expect(cacheKey({ model: 'n', max_tokens: 5, temperature: 0, prompt: 'hi' })).not.toBe(a);
    expect(cacheKey({ messages: [{ role: 'user', content: 'hi' }], temperature: 0 })).not.toBe(
      cacheKey({ prompt: 'hi', temperature: 0 }),
    );
  });

  it('only greedy or seeded requests are deterministic', () => {
    expect(isDeterministic({ temperature: 0 })).toBe(true);
    expect(isDeterministic({ temperature: 1, seed: 3 })).toBe(true);
    expect(isDeterministic({ temperature: 1 })).toBe(false);
    expect(isDeterministic({})).toBe(false);
  });
});
