/** Guard and TokenBucket (packages/deployments): keys, request and token buckets on a hand-driven clock, body size. */
import { describe, expect, it } from 'vitest';
import {
  Guard,
  KeyBuckets,
  LLMServer,
  RateLimiter,
  TokenBucket,
  checkBodySize,
  AuthenticationError,
  LLMServerConfigError,
  RateLimitError,
  RequestTooLargeError,
} from '../../packages/deployments/src/index.js';
import { grpcAuthHeaders, grpcClientOf } from '../../packages/deployments/src/grpc/llm-grpc.js';

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
    const t = 0;
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
    const err = (() => {
      try {
        g.admit('k', 0);
      } catch (e) {
        return e;
      }
    })() as RateLimitError;
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
    expect(refused).toEqual({
      ok: false,
      message: expect.stringMatching(/Request rate limit reached for k \(2 requests\/min\)/),
      retryAfterS: 30,
    });
    b.settle('k', 40, 10);
    t = 30_000;
    expect(b.take('k', 1).ok).toBe(true);
    expect(JSON.parse(JSON.stringify(refused))).toEqual(refused);
  });

  it('drops keys whose buckets have refilled, sweeping lazily at most once a minute (one key per client IP stays bounded)', () => {
    let t = 0;
    const b = new KeyBuckets({ requests: { perMinute: 60, burst: 1 } }, () => t); // back to full 1 s after a request
    for (let i = 0; i < 1000; i++) expect(b.take(`ip-10.0.${i >> 8}.${i & 255}`, 0).ok).toBe(true);
    expect(b.size).toBe(1000);
    t = 59_500; // not a minute since the last sweep: nothing is looked at
    b.take('ip-late', 0);
    expect(b.size).toBe(1001);
    t = 60_000; // every early key refilled long ago; 'ip-late' took its request 0.5 s ago
    b.take('ip-10.0.0.0', 0);
    expect(b.size).toBe(2);
    t = 60_600;
    b.prune();
    expect(b.size).toBe(1); // 'ip-late' refilled by now; the key taken at 60 s has not
  });

  it('keeps a key while it is below capacity (its limit holds) or owes a settle (a late charge must land)', () => {
    let t = 0;
    const b = new KeyBuckets({ requests: { perMinute: 2 }, tokens: { perMinute: 600, burst: 100 } }, () => t);
    expect(b.take('busy', 50)).toEqual({ ok: true, reservedTokens: 50 }); // reserves 50, unsettled
    expect(b.take('drained', 0).ok).toBe(true);
    expect(b.take('drained', 0).ok).toBe(true);
    expect(b.take('drained', 0).ok).toBe(false);
    t = 10_000; // 'busy' refilled its tokens (10/s) but still owes a settle; 'drained' has 1/3 of a request back
    b.prune();
    expect(b.size).toBe(2);
    expect(b.take('drained', 0).ok).toBe(false); // not forgotten: the limit still holds
    b.settle('busy', 50, 180); // generated far more than reserved: the debt lands on the kept bucket
    expect(b.take('busy', 1)).toMatchObject({ ok: false });
    t = 70_000; // both refilled (the debt of 130 tokens took 13 s + the rest; 'drained' got 2 requests back)
    b.prune();
    expect(b.size).toBe(0);
  });

  it('keeps no entry at all without limits', () => {
    const b = new KeyBuckets({});
    for (let i = 0; i < 100; i++) b.take(`ip-${i}`, 10);
    expect(b.size).toBe(0);
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

describe('gRPC credentials and client identity (callInfo from the gRPC proxy)', () => {
  it("takes the authorization metadata first, else the request's api_key", () => {
    const info = (authorization?: string) => ({
      metadata: (authorization ? { authorization } : {}) as Record<string, string>,
      peer: '127.0.0.1:5000',
    });
    expect(grpcAuthHeaders({ api_key: 'body-key' }, info('Bearer md-key'))).toEqual({ authorization: 'Bearer md-key' });
    expect(grpcAuthHeaders({ api_key: 'body-key' }, info())).toEqual({ authorization: 'Bearer body-key' });
    expect(grpcAuthHeaders({}, undefined)).toEqual({});
  });

  it('keys a client by its address without the port', () => {
    const peer = (p: string) => ({ metadata: {}, peer: p });
    expect(grpcClientOf(peer('127.0.0.1:5000'))).toBe('grpc-127.0.0.1');
    expect(grpcClientOf(peer('ipv4:10.1.2.3:443'))).toBe('grpc-10.1.2.3');
    expect(grpcClientOf(peer('[::1]:5000'))).toBe('grpc-::1');
    expect(grpcClientOf(undefined)).toBe('grpc');
    const guard = new Guard();
    expect(guard.authenticate({}, grpcClientOf(peer('127.0.0.1:5000')))).toBe('ip-grpc-127.0.0.1');
  });
});
