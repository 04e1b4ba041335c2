/** Guard and TokenBucket (packages/deployments): keys, request and token buckets on a hand-driven clock, body size. */
import { describe, expect, it } from 'vitest';
import {
  Guard, KeyBuckets, LLMServer, RateLimiter, TokenBucket, checkBodySize, AuthenticationError, LLMServerConfigError, RateLimitError,
  RequestTooLargeError,
} from '../../packages/deployments/src/index.js';

describe('TokenBucket', () => {
  it('starts full, refills at its rate, caps at capacity', () => {
    let t = 0;
    const b = new TokenBucket(3, 1, () => t);
    expect([b.tryTake(), b.tryTake(), b.tryTake(), b.tryTake()]).toEqual([true, true, true, false]);
    expect(b.secondsUntil(1)).toBeCloseTo(1);
    t = 1500;
    expect(b.available).toBeCloseTo(1.5);
    t = 60_000;
    expect(b.available).toBe(3);
  });

  it('goes into debt with charge() and recovers; refunds cap at capacity', () => {
    let t = 0;
    const b = new TokenBucket(10, 2, () => t);
    b.charge(16);
    expect(b.available).toBe(-6);
    expect(b.secondsUntil(1)).toBeCloseTo(3.5);
    b.refund(100);
    expect(b.available).toBe(10);
    expect(b.secondsUntil(11)).toBe(Infinity);
  });
});

describe('Guard', () => {
  it('accepts listed keys by Bearer, names them by hash, refuses others', () => {
    const g = new Guard({ apiKeys: ['sk-one-12345678'] });
    const id = g.authenticate({ authorization: 'Bearer sk-one-12345678' }, '1.2.3.4');
    expect(id).toMatch(/^key-[0-9a-f]{12}$/);
    expect(id).not.toContain('sk-one');
    expect(() => g.authenticate({}, 'x')).toThrow(AuthenticationError);
    expect(() => g.authenticate({ authorization: 'Bearer nope-nope-nope' }, 'x')).toThrow(/Invalid API key/);
    expect(() => g.authenticate({ authorization: 'Basic abc' }, 'x')).toThrow(/Missing API key/);
  });

  it('without keys, identifies callers by IP', () => {
    expect(new Guard().authenticate({}, '10.0.0.1')).toBe('ip-10.0.0.1');
  });

  it('limits requests per key with a retry-after', () => {
    let t = 0;
    const g = new Guard({ rateLimits: { requests: { perMinute: 2 } }, now: () => t });
    g.admit('k', 0);
    g.admit('k', 0);
    const err = (() => { try { g.admit('k', 0); } catch (e) { return e; } })() as RateLimitError;
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err.retryAfterS).toBe(30);
    g.admit('other', 0);
    t = 30_000;
    expect(() => g.admit('k', 0)).not.toThrow();
  });

  it('reserves tokens up front and settles to the real count', () => {
    let t = 0;
    const g = new Guard({ rateLimits: { tokens: { perMinute: 100 } }, now: () => t });
    const a = g.admit('k', 80);
    g.settle(a, 30);
    const b = g.admit('k', 80);
    g.settle(b, 80);
    expect(() => g.admit('k', 1)).toThrow(/Token rate limit/);
    t = 60_000;
    expect(() => g.admit('k', 1)).not.toThrow();
  });

  it('refuses large bodies by content-length or size', () => {
    expect(() => checkBodySize({ 'content-length': '2000' }, undefined, 1000)).toThrow(RequestTooLargeError);
    expect(() => checkBodySize({}, { prompt: 'x'.repeat(2000) }, 1000)).toThrow(/limits\.maxBodyBytes/);
    expect(() => checkBodySize({}, { prompt: 'x' }, 1000)).not.toThrow();
  });
});

describe('KeyBuckets and RateLimiter (limits shared by replicas)', () => {
  it('decides as plain data: a refusal says why and when to retry, and takes nothing', () => {
    let t = 0;
    const b = new KeyBuckets({ requests: { perMinute: 2 }, tokens: { perMinute: 100 } }, () => t);
    expect(b.take('k', 40)).toEqual({ ok: true, reservedTokens: 40 });
    expect(b.take('k', 40)).toEqual({ ok: true, reservedTokens: 40 });
    const refused = b.take('k', 1);
    expect(refused).toEqual({ ok: false, message: expect.stringMatching(/Request rate limit reached for k \(2 requests\/min\)/), retryAfterS: 30 });
    b.settle('k', 40, 10);
    t = 30_000;
    expect(b.take('k', 1).ok).toBe(true);
    expect(JSON.parse(JSON.stringify(refused))).toEqual(refused);
  });

  it('one RateLimiter answers every replica from the same buckets', () => {
    const limiter = new RateLimiter({ requests: { perMinute: 3 } });
    // Three replicas asking for the same key share its three requests.
    expect(['r1', 'r2', 'r3', 'r1'].map(() => limiter.admit('key-a', 0).ok)).toEqual([true, true, true, false]);
    expect(limiter.admit('key-b', 0).ok).toBe(true);
  });

  it('refuses bad limits, and rateLimits together with a shared limiter', () => {
    expect(() => new RateLimiter({ tokens: { perMinute: 0 } })).toThrow(/rateLimits\.tokens\.perMinute/);
    expect(() => new KeyBuckets({ requests: { perMinute: 5, burst: -1 } })).toThrow(/burst/);
    const handle = {} as ConstructorParameters<typeof LLMServer>[1];
    expect(() => new LLMServer({ rateLimits: { requests: { perMinute: 1 } } }, handle)).toThrow(LLMServerConfigError);
  });
});
